"""The training loop, top to bottom: build -> for epoch: for batch: step -> evaluate -> write.

The Trainer knows nothing of MPI: it gets a Communicator. Only the node with rank 0 writes
the shared run files and prints progress (``self.is_writer``, decided once here).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from compoptim.comm.base import Communicator
from compoptim.compress import CompressContext, build_compressor
from compoptim.compress.randomness import derived_seed
from compoptim.data import ShardLoader, label_histogram, load_dataset, partition
from compoptim.data.cifar10 import random_crop_flip
from compoptim.errors import UserError
from compoptim.models import build_model
from compoptim.optim import FlatParameters, build_optimizer
from compoptim.optim.schedules import LRSchedule
from compoptim.train.checkpoint import (
    check_manifest,
    config_hash,
    load_rank_state,
    newest_checkpoint,
    save_rank_state,
    write_manifest,
)
from compoptim.train.evaluate import Evaluator, task_loss
from compoptim.train.loggers import NullLogger, build_logger
from compoptim.train.signals import STOP_SIGNALS, Diverged, Preempted
from compoptim.train.summary import environment, final_summary
from compoptim.train.writer import RunWriter

# Model init draws from torch's global RNG; nodes of the in-process backend build their
# models in parallel threads, so seeding and drawing must not interleave.
_MODEL_INIT_LOCK = threading.Lock()


class Trainer:
    """Builds one node's share of a run; ``fit()`` trains it with the other nodes.

    Construction does no communication, so a bad config fails on every node before any
    collective starts (the CLI then reports it once and exits cleanly).
    """

    def __init__(self, cfg: DictConfig, comm: Communicator, run_dir: Path, device: torch.device,
                 log: Callable[[str], None] = print) -> None:
        self.cfg, self.comm, self.device = cfg, comm, device
        self.is_writer = comm.rank == 0
        self.log = log if self.is_writer else (lambda _msg: None)
        t = cfg.trainer
        _check_settings(cfg, comm.size)

        data = load_dataset(cfg.dataset)
        if comm.size > len(data.y_train):
            raise UserError(f"{comm.size} nodes but dataset={data.name} has only {len(data.y_train)} training samples")
        d = cfg.dataset
        strata = data.partition_labels.numpy()
        shards = partition(d.get("partition", "iid"), strata, comm.size, seed=cfg.seed,
                           classes_per_node=d.get("classes_per_node"), alpha=d.get("alpha", 0.5),
                           shards_per_node=d.get("shards_per_node", 2))
        self.label_histogram = label_histogram(strata, shards, int(strata.max()) + 1)
        self.task = data.task
        self.loader = ShardLoader(
            data.x_train, data.y_train, shards[comm.rank], t.batch_size,
            largest_shard=max(len(s) for s in shards),
            seed=_node_seed(cfg.seed, comm.rank), device=device,
            augment=random_crop_flip if d.get("augment", False) else None,
        )

        def make_model() -> torch.nn.Module:
            # Same seed on every node: all models start from the same point.
            with _MODEL_INIT_LOCK:
                torch.manual_seed(cfg.seed)
                return build_model(cfg.model, data.input_shape, data.num_classes).to(device)

        self.model = make_model()
        self.flat = FlatParameters(self.model)
        # Built once up front: a bad setting fails here, before the optimizer; and its wire
        # bits per model entry (32 uncompressed) go to the summary for the report.
        self.bits_per_element = build_compressor(cfg.compressor, self._compress_context(0)).bits_per_element(
            self.flat.numel)

        def compressors(stream: int):
            # One compressor per communicated variable, its random draws kept apart by stream.
            return build_compressor(cfg.compressor, self._compress_context(stream))

        self.optimizer = build_optimizer(cfg.optimizer, self.flat, comm, compressors)
        if getattr(self.optimizer, "overlap", False):
            # Each parameter's gradient completes in turn: poll the exchange of x_t meanwhile.
            for p in self.model.parameters():
                if p.requires_grad:  # a frozen tensor gets no gradient, and takes no hook
                    p.register_post_accumulate_grad_hook(lambda _p: comm.progress())
        self.schedule = LRSchedule(t.lr_schedule, len(self.loader), t.epochs, t.warmup_epochs,
                                   t.lr_milestones, t.lr_decay)
        self.evaluator = Evaluator(self.model, self.flat, make_model(), data.x_test.to(device),
                                   data.y_test.to(device), comm, task=data.task,
                                   average_buffers_into_local=cfg.model.get("bn_stats", "averaged") == "averaged")
        self.writer = RunWriter(run_dir) if self.is_writer else None
        self.logger = build_logger(cfg.logger, run_dir) if self.is_writer else NullLogger()
        self.num_params = self.flat.numel
        self.samples_per_epoch = len(data.y_train)
        self.run_dir = Path(run_dir)
        self.skipped_steps = 0
        # Checked at build, so a resume that cannot work fails before any training traffic.
        self.resume_from = self._find_checkpoint() if cfg.get("resume", False) else None

    def fit(self) -> dict[str, Any]:
        cfg, t = self.cfg, self.cfg.trainer
        start = time.perf_counter()
        train_time = 0.0
        topo = self.comm.topology.describe()
        self.log(f"compoptim: {self.comm.size} nodes, topology={topo['name']} (spectral gap "
                 f"{topo['spectral_gap']:.4f}, ||W-J|| {topo['distance_to_average']:.4f}), model={cfg.model.name} "
                 f"({self.num_params:,} params), dataset={cfg.dataset.name}, optimizer={cfg.optimizer.name}, "
                 f"{len(self.loader)} steps/epoch, device={self.device}, {torch.get_num_threads()} threads/rank")
        if self.writer:
            self.writer.write_config(OmegaConf.to_yaml(cfg, resolve=True))
            self.writer.write_json("topology.json", self.comm.topology.to_json())
            self.writer.write_json("partition.json", {"partition": str(cfg.dataset.get("partition", "iid")),
                                                      "label_histogram": self.label_histogram})
            self.writer.write_summary({"status": "running", **environment(self.comm, self.device)})

        rows, first_epoch, train_time = self._start_or_resume(start)
        for epoch in range(first_epoch, t.epochs + 1):
            epoch_start = time.perf_counter()
            loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
            seen = 0
            for xb, yb in self.loader.epoch():
                loss = self.train_step(xb, yb)
                if loss is not None:
                    loss_sum += loss.to(torch.float64) * len(yb)
                    seen += len(yb)
                if epoch == 1 and self.optimizer.t == 1:
                    self.flat.check_attached()  # once: autograd still writes into the flat buffers
            train_time += time.perf_counter() - epoch_start

            # One reduction per epoch carries the loss and whether any node was asked to stop.
            totals = torch.tensor([loss_sum.item(), float(seen), float(self.stop_requested())], dtype=torch.float64)
            self.comm.allreduce_(totals, "sum")
            train_loss = (totals[0] / totals[1]).item()
            if not math.isfinite(train_loss) and t.on_nonfinite == "stop":
                raise Diverged(f"non-finite training loss {train_loss} in epoch {epoch}")
            if epoch % t.eval_every == 0 or epoch == t.epochs:
                rows.append(self._evaluate(epoch, train_loss, start, train_time))
            else:
                self.log(f"epoch {epoch:>3}/{t.epochs} | train loss {train_loss:.4f}")
            stopping = totals[2].item() > 0
            if stopping or (t.checkpoint_every and epoch % t.checkpoint_every == 0):
                self._checkpoint(epoch, train_time, rows)
            if stopping and epoch < t.epochs:
                raise Preempted(f"stopped by a signal after epoch {epoch}; checkpoint saved: resume with "
                                f"resume=true hydra.run.dir={self.run_dir}")

        summary = final_summary(rows, topology=topo, num_params=self.num_params)
        summary.update(self._metric_traffic(), **environment(self.comm, self.device))
        summary["compression"] = {"name": cfg.compressor.name, "bits_per_element": self.bits_per_element,
                                  "ratio": 32.0 / self.bits_per_element}
        self.logger.close()
        if self.writer:
            self.writer.write_summary(summary)
        self.log(f"done: test acc {summary['test_acc']:.4f} (averaged model), "
                 f"{summary['bytes_sent_per_node'] / 1e6:.2f} MB sent per node, {summary['wall_time_s']:.1f} s")
        return summary

    def _compress_context(self, stream: int) -> CompressContext:
        seed = self.cfg.seed if stream == 0 else derived_seed(self.cfg.seed, stream)
        return CompressContext(layout=self.flat.shapes, dtype=self.flat.params.dtype, seed=seed, rank=self.comm.rank)

    def _start_or_resume(self, start: float) -> tuple[list[dict[str, Any]], int, float]:
        """(metric rows so far, first epoch to train, training time so far): a fresh start
        evaluates the initial model; ``resume=true`` restores the newest complete checkpoint."""
        manifest = self.resume_from
        if manifest is None:
            return [self._evaluate(epoch=0, train_loss=float("nan"), start=start, train_time=0.0)], 1, 0.0
        state = load_rank_state(manifest, self.comm.rank, self.comm.size, config_hash(self.cfg), self.device)
        self.flat.params.copy_(state["params"])
        for buffer, saved in zip(self.model.buffers(), state["buffers"]):
            buffer.copy_(saved)
        self.optimizer.load_state_dict(state["optimizer"])
        self.loader.generator.set_state(state["loader_rng"])
        torch.set_rng_state(state["torch_rng"])
        c = self.comm
        (c.bytes_sent, c.bytes_received, c.metric_bytes_sent, c.metric_bytes_received) = (
            int(v) for v in state["bytes"])
        c.compress_time_s, c.comm_time_s, c.wait_time_s = (float(v) for v in state["times"])
        c.encode_count = int(state["encodes"])
        rows = [r for r in state["rows"]]
        if self.writer:
            self.writer.restore(rows, state["node_rows"])
        epoch = int(manifest["epoch"])
        self.log(f"resumed from {manifest['folder']} (epoch {epoch}, step {manifest['step']})")
        return rows, epoch + 1, float(state["train_time"])

    def _find_checkpoint(self) -> dict[str, Any]:
        manifest = newest_checkpoint(self.run_dir)
        if manifest is None:
            raise UserError(f"resume=true but {self.run_dir}/checkpoints holds no complete checkpoint; give the "
                            f"run's directory with hydra.run.dir=..., or start without resume")
        check_manifest(manifest, self.comm.size, config_hash(self.cfg))
        return manifest

    def _checkpoint(self, epoch: int, train_time: float, rows: list[dict[str, Any]]) -> None:
        """Every rank saves its state; rank 0 writes the manifest once all have (one reduction)."""
        c = self.comm
        state = {
            "params": self.flat.params.detach().clone(),
            "buffers": [b.detach().clone() for b in self.model.buffers()],
            "optimizer": self.optimizer.state_dict(),
            "loader_rng": self.loader.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "bytes": [c.bytes_sent, c.bytes_received, c.metric_bytes_sent, c.metric_bytes_received],
            "times": [c.compress_time_s, c.comm_time_s, c.wait_time_s],
            "encodes": c.encode_count,
            "train_time": train_time,
            "rows": rows,
            "node_rows": self.writer.node_rows if self.writer else [],
        }
        save_rank_state(self.run_dir, epoch, c.rank, state)
        done = torch.ones(1, dtype=torch.float64)
        c.allreduce_(done, "sum")
        if self.writer and int(done.item()) == c.size:
            write_manifest(self.run_dir, epoch, self.optimizer.t, c.size, config_hash(self.cfg))

    def stop_requested(self) -> bool:
        return STOP_SIGNALS.received

    def train_step(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor | None:
        """One optimizer step on this batch; the batch's mean loss (None for an empty batch,
        whose node still takes part in the gossip with a zero gradient)."""

        def gradient() -> torch.Tensor | None:
            # Also the closure for estimators that need this batch's gradient at another x.
            self.flat.zero_grad()
            if not len(yb):
                return None
            loss = task_loss(self.task, self.model(xb), yb)
            loss.backward()
            return loss.detach()

        self.optimizer.begin_step()  # may post x_t's exchange, to travel during the backward pass
        loss = gradient()
        if loss is not None and not torch.isfinite(loss):
            if self.cfg.trainer.on_nonfinite == "stop":
                raise Diverged(f"non-finite training loss at step {self.optimizer.t} on node {self.comm.rank}")
            self.flat.grads.zero_()  # on_nonfinite=skip: this node contributes no gradient this step
            self.skipped_steps += 1
            loss = None
        self.optimizer.lr_scale = self.schedule.multiplier(self.optimizer.t)
        self.optimizer.step(closure=gradient)
        return loss

    def _evaluate(self, epoch: int, train_loss: float, start: float, train_time: float) -> dict[str, Any]:
        ev = self.evaluator.evaluate()
        if not math.isfinite(ev.test_loss) and self.cfg.trainer.on_nonfinite == "stop":
            raise Diverged(f"the averaged model is not finite at epoch {epoch} (test loss {ev.test_loss})")
        c = self.comm
        # Per node: training traffic and where the training time went; then mean (and max) over nodes.
        # Compute is what remains of the training time after compression, transfers and waiting.
        compute = train_time - c.compress_time_s - c.comm_time_s - c.wait_time_s
        counters = torch.tensor([c.bytes_sent, c.bytes_received, train_time, compute, c.compress_time_s,
                                 c.comm_time_s, c.wait_time_s], dtype=torch.float64)
        most = torch.tensor([c.bytes_sent, c.wait_time_s], dtype=torch.float64)
        error = torch.tensor(c.take_compression_error(), dtype=torch.float64)
        c.allreduce_(counters, "mean")
        c.allreduce_(most, "max")
        c.allreduce_(error, "sum")
        row = {
            "epoch": epoch,
            "step": self.optimizer.t,
            "samples": epoch * self.samples_per_epoch,
            "wall_time_s": time.perf_counter() - start,
            **dict(zip(("train_time_s", "compute_time_s", "compress_time_s", "comm_time_s", "wait_time_s"),
                       counters[2:].tolist())),
            "wait_time_s_max": most[1].item(),
            "train_loss": train_loss,
            "test_loss": ev.test_loss,
            "test_acc": ev.test_acc,
            "local_test_acc_mean": ev.local_test_acc_mean,
            "local_test_acc_min": ev.local_test_acc_min,
            "local_test_acc_max": ev.local_test_acc_max,
            "consensus_distance": ev.consensus_distance,
            "bytes_sent_per_node": counters[0].item(),
            "bytes_received_per_node": counters[1].item(),
            "bytes_sent_max_node": most[0].item(),
            # mean over nodes and sampled steps since the last evaluation (none sampled: NaN)
            "compression_error": (error[0] / error[1]).item() if error[1] > 0 else
            (0.0 if self.cfg.compressor.name == "none" else float("nan")),
        }
        nodes = self._node_rows(epoch, ev, compute)
        if self.writer:
            self.writer.add_metrics(row)
            self.writer.add_node_metrics(nodes)
            self.logger.log(row)
        if epoch > 0:
            self.log(f"epoch {epoch:>3}/{self.cfg.trainer.epochs} | train loss {train_loss:.4f} | "
                     f"test acc {ev.test_acc:.4f} (avg), {ev.local_test_acc_mean:.4f} (local mean) | "
                     f"consensus {ev.consensus_distance:.2e} | {row['bytes_sent_per_node'] / 1e6:.2f} MB/node | "
                     f"{row['wall_time_s']:.1f} s")
        return row


    def _node_rows(self, epoch: int, ev, compute: float) -> list[dict[str, Any]]:
        """One row per node (every node fills its own row of a table that is then summed)."""
        c = self.comm
        fields = ("local_test_acc", "distance_to_average", "bytes_sent", "bytes_received", "compute_time_s",
                  "compress_time_s", "comm_time_s", "wait_time_s")
        table = torch.zeros(c.size, len(fields), dtype=torch.float64)
        table[c.rank] = torch.tensor([ev.node_test_acc, ev.node_distance, c.bytes_sent, c.bytes_received, compute,
                                      c.compress_time_s, c.comm_time_s, c.wait_time_s], dtype=torch.float64)
        c.allreduce_(table, "sum")
        return [{"epoch": epoch, "step": self.optimizer.t, "node": r, **dict(zip(fields, table[r].tolist()))}
                for r in range(c.size)]

    def _metric_traffic(self) -> dict[str, float]:
        """Evaluation/logging reduction bytes, mean over nodes (kept out of the training counts)."""
        traffic = torch.tensor([self.comm.metric_bytes_sent, self.comm.metric_bytes_received], dtype=torch.float64)
        self.comm.allreduce_(traffic, "mean")
        return {"metric_bytes_sent_per_node": traffic[0].item(), "metric_bytes_received_per_node": traffic[1].item()}


def _check_settings(cfg: DictConfig, size: int | None = None) -> None:
    if cfg.trainer.on_nonfinite not in ("stop", "skip"):
        raise UserError(f"trainer.on_nonfinite must be stop or skip; got {cfg.trainer.on_nonfinite}")
    if cfg.trainer.checkpoint_every < 0:
        raise UserError(f"trainer.checkpoint_every must be >= 0 (epochs; 0: only on signals); "
                        f"got {cfg.trainer.checkpoint_every}")
    for key in ("epochs", "batch_size", "eval_every"):
        if cfg.trainer[key] < 1:
            raise UserError(f"trainer.{key} must be >= 1; got {cfg.trainer[key]}")
    if cfg.seed < 0:
        raise UserError(f"seed must be >= 0; got {cfg.seed}")
    expected = cfg.get("nodes")
    if expected is not None and size is not None and expected != size:
        raise UserError(f"this configuration is meant for nodes={expected} (mpirun -np {expected}, or backend=local "
                        f"backend.nodes={expected}); got {size} nodes: change the launch or set nodes=null")


def _node_seed(seed: int, rank: int) -> int:
    """A distinct, reproducible seed per (run seed, node) for data order."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])
