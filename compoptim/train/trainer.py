"""The training loop, top to bottom: build -> for epoch: for batch: step -> evaluate -> write.

The Trainer knows nothing of MPI: it gets a Communicator, and its node from ``build_node``.
Only the node with rank 0 writes the shared run files and prints progress
(``self.is_writer``, decided once here).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from compoptim.comm.backends import BACKENDS
from compoptim.comm.base import Communicator
from compoptim.comm.network import SimulatedNetwork
from compoptim.errors import UserError
from compoptim.registry import to_plain
from compoptim.train.checkpoint import (
    check_manifest,
    load_rank_state,
    newest_checkpoint,
    save_rank_state,
    write_manifest,
)
from compoptim.train.loggers import NullLogger, build_logger
from compoptim.train.loss import full_gradient_, loss_terms, task_loss
from compoptim.train.node import SharedParts, build_node
from compoptim.train.progress import EpochProgress, on_terminal
from compoptim.train.record import code_version, host_names, launch_record, timestamp
from compoptim.train.signals import STOP_SIGNALS, Diverged, Interrupted, Preempted
from compoptim.train.summary import environment, final_summary
from compoptim.train.writer import RunWriter, save_model


class Trainer:
    """Trains one node of a run (built by ``build_node``) with the other nodes: ``fit()``.

    Construction does no communication, so a bad config fails on every node before any
    collective starts (the CLI then reports it once and exits cleanly).
    """

    def __init__(self, cfg: Mapping[str, Any], comm: Communicator, run_dir: Path, device: torch.device,
                 log: Callable[[str], None] = print, launch: Mapping[str, Any] | None = None,
                 shared: SharedParts | None = None) -> None:
        """``launch``: how the run was started (``command``, ``overrides``), for summary.json;
        ``shared``: what the nodes of this process build once (``build_node``)."""
        self.cfg = cfg = to_plain(cfg)  # the boundary: plain values from here down
        self.comm, self.device = comm, device
        self.is_writer = comm.rank == 0
        self.log = log if self.is_writer else (lambda _msg: None)
        self.show_progress = self.is_writer and on_terminal()
        _check_settings(cfg)
        self.run_dir = Path(run_dir)
        self.node = node = build_node(cfg, comm, device, shared, recorded_layout=self._recorded_layout())
        self.model, self.flat, self.optimizer, self.loader = node.model, node.flat, node.optimizer, node.loader
        self.evaluator, self.schedule = node.evaluator, node.schedule
        self.writer = RunWriter(run_dir) if self.is_writer else None
        # All nodes' simulated clocks, kept by the writer (sim_time_s: comm/network.py); a
        # pipeline's activations are not modelled, so it has no simulated time (NaN).
        self.network = SimulatedNetwork(node.network, comm.topology) if self.is_writer and not node.pipeline \
            else None
        self.logger = build_logger(cfg["logger"], run_dir) if self.is_writer else NullLogger()
        self.launch = dict(launch or launch_record(None, None))
        self.skipped_steps = 0
        backend = cfg["backend"]
        self.slowdown = BACKENDS.build(backend).slowdown(comm.rank, comm.size) if backend["name"] == "mpi" else 0.0
        # Checked at build, so a resume that cannot work fails before any training traffic.
        self.resume_from = self._find_checkpoint() if cfg.get("resume", False) else None

    def fit(self) -> dict[str, Any]:
        cfg, t = self.cfg, self.cfg["trainer"]
        start = time.perf_counter()
        train_time = 0.0
        topo = self.comm.topology.describe()
        # hosts is a reduction every node joins; the git queries only on the node that writes the record
        record = {**self.launch, "started_at": timestamp(), "hosts": host_names(self.comm),
                  "code": code_version() if self.is_writer else None, "backend": cfg["backend"]["name"],
                  "dataset_hash": self.node.dataset_hash}
        self.log(f"run directory: {self.run_dir}")
        self.log(f"compoptim: {self.comm.size} nodes, topology={topo['name']} (spectral gap "
                 f"{topo['spectral_gap']:.4f}, ||W-J|| {topo['distance_to_average']:.4f}), "
                 f"model={cfg['model']['name']} ({self.node.num_params:,} params), dataset={cfg['dataset']['name']}, "
                 f"optimizer={cfg['optimizer']['name']}, {len(self.loader)} steps/epoch, device={self.device}, "
                 f"{torch.get_num_threads()} threads/rank")
        if self.writer:
            self.writer.write_config(OmegaConf.to_yaml(OmegaConf.create(cfg)))
            self.writer.write_json("topology.json", self.comm.topology.to_json())
            self.writer.write_json("partition.json", {"partition": cfg["dataset"]["partition"]["name"],
                                                      "label_histogram": self.node.label_histogram})
            self.writer.write_summary({"status": "running", **environment(self.comm, self.device), **record})
        if self.node.pipeline:
            self._describe_pipeline()

        rows, first_epoch, train_time, wall_time = self._start_or_resume(start)
        start -= wall_time  # a resumed run's clock continues where its checkpoint stopped
        STOP_SIGNALS.training = True  # a first Ctrl-C from here on waits for the epoch's end
        STOP_SIGNALS.announce = STOP_SIGNALS.announce or self.is_writer
        try:
            rows = self._train_epochs(rows, first_epoch, start, train_time)
        finally:
            STOP_SIGNALS.training = False
        self.optimizer.close()

        summary = final_summary(rows, topology=topo, num_params=self.node.num_params, target_acc=t["target_acc"])
        summary.update(self._metric_traffic(), **environment(self.comm, self.device), **record, ended_at=timestamp())
        bits = self.node.bits_per_element
        summary["compression"] = {"name": cfg["compressor"]["name"], "bits_per_element": bits, "ratio": 32.0 / bits}
        summary["objective_samples"] = self.node.objective_samples
        self.logger.close()
        if self.writer:
            if t["save_model"]:
                # x̄ of the last evaluation (always the final epoch), with the nodes' averaged buffers
                save_model(self.evaluator.averaged_model, self.run_dir / "model.pt")
            self.writer.write_summary(summary)
        self.log(f"done: test acc {summary['test_acc']:.4f} (averaged model), "
                 f"{summary['bytes_sent_per_node'] / 1e6:.2f} MB sent per node, {summary['wall_time_s']:.1f} s")
        self.log(f"run directory: {self.run_dir}")
        return summary

    def _train_epochs(self, rows: list[dict[str, Any]], first_epoch: int, start: float,
                      train_time: float) -> list[dict[str, Any]]:
        """Epochs ``first_epoch`` to the last: train, reduce, evaluate, checkpoint; the metric rows.
        An agreed stop (a signal, divergence) raises its ``RunStopped`` on every node alike."""
        t = self.cfg["trainer"]
        stop_noted = False
        for epoch in range(first_epoch, t["epochs"] + 1):
            epoch_start = time.perf_counter()
            self.comm.clock.restart()  # the simulated clocks count training only
            loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
            seen = 0
            batches = self.optimizer.epoch_batches(self.loader)  # an asynchronous method takes its own share
            progress = EpochProgress(batches, len(self.loader), epoch, t["epochs"], self.show_progress)
            for xb, yb in progress:
                loss = self.train_step(xb, yb)
                if loss is not None:
                    loss_sum += loss.to(torch.float64) * len(yb)
                    seen += len(yb)
                if epoch == 1 and self.optimizer.t == 1:
                    self.flat.check_attached()  # once: autograd still writes into the flat buffers
                progress.step(lambda total=loss_sum, count=seen: (total / max(count, 1)).item())
                if STOP_SIGNALS.received and not stop_noted:
                    stop_noted = self._note_stop(epoch)
            train_time += time.perf_counter() - epoch_start
            self._advance_clocks()

            # One reduction per epoch carries the loss and whether any node was asked to stop.
            totals = torch.tensor([loss_sum.item(), float(seen), float(STOP_SIGNALS.preempt),
                                   float(STOP_SIGNALS.interrupt)], dtype=torch.float64)
            self.comm.allreduce_(totals, "sum")
            train_loss = (totals[0] / totals[1]).item()
            if not math.isfinite(train_loss) and t["on_nonfinite"] == "stop":
                raise Diverged(f"non-finite training loss {train_loss} in epoch {epoch}", agreed=True)
            if epoch % t["eval_every"] == 0 or epoch == t["epochs"]:
                rows.append(self._evaluate(epoch, train_loss, start, train_time))
            else:
                self.log(f"epoch {epoch:>3}/{t['epochs']} | train loss {train_loss:.4f}")
            preempted, interrupted = totals[2].item() > 0, totals[3].item() > 0
            if preempted or interrupted or (t["checkpoint_every"] and epoch % t["checkpoint_every"] == 0):
                self._checkpoint(epoch, train_time, time.perf_counter() - start, rows)
            if (preempted or interrupted) and epoch < t["epochs"]:
                stop, why = (Interrupted, "interrupted (Ctrl-C)") if interrupted else (Preempted, "stopped by a signal")
                raise stop(f"{why} after epoch {epoch}; checkpoint saved: resume with resume=true "
                           f"hydra.run.dir={self.run_dir}", agreed=True)
        return rows

    def _recorded_layout(self) -> dict[str, Any] | None:
        """The pipeline layout a resumed run wrote at its start (its measured split)."""
        path = self.run_dir / "parallel.json"
        if not self.cfg.get("resume", False) or not path.exists():
            return None
        return json.loads(path.read_text())["layout"]

    def _describe_pipeline(self) -> None:
        """parallel.json and the start's lines: the split per stage, the placement."""
        stage = self.node.pipeline
        layout = stage.layout.describe(stage.blocks)
        how = f"split by hand (parallel.split), {stage.plan.cost} cost" if stage.plan.split else \
            f"split by {stage.plan.cost} cost"
        self.log(f"pipeline: {len(layout['stages'])} stages x {stage.layout.replicas} replicas, "
                 f"{stage.plan.schedule} with {stage.plan.microbatches} microbatches, {how} "
                 f"(max/mean {layout['balance']:.3f}); replicas on ranks {layout['replicas']}, stage links "
                 f"{'one hop each' if stage.layout.placement.one_hop else 'hops ' + str(layout['hops'])}")
        for s, st in enumerate(layout["stages"]):
            self.log(f"  stage {s}: blocks {st['blocks'][0]}-{st['blocks'][1]}, {st['parameters']:,} params, "
                     f"cost {st['cost']:.4g}")
        if self.writer:
            self.writer.write_json("parallel.json", {"plan": self.cfg["parallel"], "layout": layout,
                                                     "gossip_topology": stage.gossip.topology.describe()})

    def _advance_clocks(self) -> None:
        """The network model's clocks through this epoch's rounds: one gather of every node's
        round log (a few floats per round) to the writer."""
        logs = self.comm.allgather(torch.from_numpy(self.comm.clock.take()))
        if self.network is not None:
            self.network.advance(list(logs.numpy()))

    def _note_stop(self, epoch: int) -> bool:
        """A stop was asked for: summary.json says so at once (``interrupted`` or ``preempted``),
        so a run killed before the epoch's end is not left ``running``."""
        if self.writer:
            self.writer.update_summary(status="interrupted" if STOP_SIGNALS.interrupt else "preempted",
                                       error=f"a stop was requested in epoch {epoch}: the run stops at the end of "
                                             f"that epoch with a checkpoint")
        return True

    def _start_or_resume(self, start: float) -> tuple[list[dict[str, Any]], int, float, float]:
        """(metric rows so far, first epoch to train, training and wall time so far): a fresh
        start evaluates the initial model; ``resume=true`` restores the newest complete checkpoint."""
        manifest = self.resume_from
        if manifest is None:
            return [self._evaluate(epoch=0, train_loss=float("nan"), start=start, train_time=0.0)], 1, 0.0, 0.0
        state = load_rank_state(manifest, self.comm.rank, self.comm.size, self.cfg, self.device)
        self.flat.params.copy_(state["params"])
        for buffer, saved in zip(self.model.buffers(), state["buffers"]):
            buffer.copy_(saved)
        self.optimizer.load_state_dict(state["optimizer"])
        self.loader.generator.set_state(state["loader_rng"])
        torch.set_rng_state(state["torch_rng"])
        self.comm.counters.load_state_dict(state["counters"])
        if self.network is not None:
            self.network.clocks = state["sim_clocks"].numpy().astype(np.float64)
        rows = [r for r in state["rows"]]
        if self.writer:
            self.writer.restore(rows, state["node_rows"])
        epoch = int(manifest["epoch"])
        self.log(f"resumed from {manifest['folder']} (epoch {epoch}, step {manifest['step']})")
        return rows, epoch + 1, float(state["train_time"]), float(state["wall_time"])

    def _find_checkpoint(self) -> dict[str, Any]:
        manifest = newest_checkpoint(self.run_dir)
        if manifest is None:
            raise UserError(f"resume=true but {self.run_dir}/checkpoints holds no complete checkpoint; give the "
                            f"run's directory with hydra.run.dir=..., or start without resume")
        check_manifest(manifest, self.comm.size, self.cfg)
        return manifest

    def _checkpoint(self, epoch: int, train_time: float, wall_time: float, rows: list[dict[str, Any]]) -> None:
        """Every rank saves its state; rank 0 writes the manifest once all have (one reduction)."""
        c = self.comm
        state = {
            "params": self.flat.params.detach().clone(),
            "buffers": [b.detach().clone() for b in self.model.buffers()],
            "optimizer": self.optimizer.state_dict(),
            "loader_rng": self.loader.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "counters": c.counters.state_dict(),
            "sim_clocks": torch.from_numpy(self.network.clocks.copy()) if self.network else None,
            "train_time": train_time,
            "wall_time": wall_time,
            "rows": rows,
            "node_rows": self.writer.node_rows if self.writer else [],
        }
        save_rank_state(self.run_dir, epoch, c.rank, state)
        done = torch.ones(1, dtype=torch.float64)
        c.allreduce_(done, "sum")
        if self.writer and int(done.item()) == c.size:
            write_manifest(self.run_dir, epoch, self.optimizer.t, c.size, self.cfg)

    def train_step(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor | None:
        """One optimizer step on this batch; the batch's mean loss (None for an empty batch,
        whose node still takes part in the gossip with a zero gradient)."""

        def gradient() -> torch.Tensor | None:
            # Also the closure for estimators that need this batch's gradient at another x.
            self.flat.zero_grad()
            if not len(yb):
                return None
            if self.node.pipeline:  # the replica's stages run the batch together; the last has the loss
                return self.node.pipeline.step(xb, yb, loss_terms(yb))
            loss = task_loss(self.node.task, self.model(xb), yb)
            loss.backward()
            return loss.detach()

        began = time.perf_counter()
        self.optimizer.begin_step()  # may post x_t's exchange, to travel during the backward pass
        loss = gradient()
        self.comm.clock.compute_step()  # network.step_compute_s, if set, stands for this step's compute
        if self.optimizer.t == 0 and self.optimizer.initial_gradient == "full":
            # Once, at x_0: the tracker starts from this node's full local gradient (its
            # whole shard, unaugmented); the reported loss stays this minibatch's.
            self.flat.zero_grad()
            full_gradient_(self.model, self.node.task, self.loader.x, self.loader.y)
        if loss is not None and not torch.isfinite(loss):
            if self.cfg["trainer"]["on_nonfinite"] == "stop":
                raise Diverged(f"non-finite training loss at step {self.optimizer.t} on node {self.comm.rank}")
            self.flat.grads.zero_()  # on_nonfinite=skip: this node contributes no gradient this step
            self.skipped_steps += 1
            loss = None
        self.optimizer.lr_scale = self.schedule.multiplier(self.optimizer.t)
        self.optimizer.step(closure=gradient)
        if self.slowdown:  # backend.stragglers: this rank's steps take straggler_factor times as long
            time.sleep(self.slowdown * (time.perf_counter() - began))
        return loss

    def _evaluate(self, epoch: int, train_loss: float, start: float, train_time: float) -> dict[str, Any]:
        ev = self.evaluator.evaluate()
        if not math.isfinite(ev.test_loss) and self.cfg["trainer"]["on_nonfinite"] == "stop":
            raise Diverged(f"the averaged model is not finite at epoch {epoch} (test loss {ev.test_loss})",
                           agreed=True)
        c, k = self.comm, self.comm.counters
        # Per node: training traffic and where the training time went; then mean (and max) over nodes.
        # Compute is what remains of the training time after compression, transfers and waiting.
        # A pipeline stage's waiting for the other stages (the bubble) is not its compute either.
        compute = train_time - k.compress_time_s - k.comm_time_s - k.wait_time_s - k.bubble_time_s
        counters = torch.tensor([k.bytes_sent, k.bytes_received, train_time, compute, k.compress_time_s,
                                 k.comm_time_s, k.wait_time_s, k.bubble_time_s, k.activation_bytes_sent,
                                 k.messages_sent, self.optimizer.t, k.staleness_sum, k.stale_steps],
                                dtype=torch.float64)
        most = torch.tensor([k.bytes_sent, k.wait_time_s, k.staleness_max], dtype=torch.float64)
        error = torch.tensor(k.take_compression_error(), dtype=torch.float64)
        c.allreduce_(counters, "mean")
        c.allreduce_(most, "max")
        c.allreduce_(error, "sum")
        row = {
            "epoch": epoch,
            # the nodes' mean step count (an asynchronous method's nodes take different numbers)
            "step": round(counters[10].item()),
            "samples": epoch * self.node.samples_per_epoch,
            "wall_time_s": time.perf_counter() - start,
            "sim_time_s": self.network.time_s if self.network else float("nan"),
            **dict(zip(("train_time_s", "compute_time_s", "compress_time_s", "comm_time_s", "wait_time_s",
                        "bubble_time_s"), counters[2:8].tolist())),
            "wait_time_s_max": most[1].item(),
            "train_loss": train_loss,
            "test_loss": ev.test_loss,
            "test_acc": ev.test_acc,
            "local_test_acc_mean": ev.local_test_acc_mean,
            "local_test_acc_min": ev.local_test_acc_min,
            "local_test_acc_max": ev.local_test_acc_max,
            "consensus_distance": ev.consensus_distance,
            "train_objective": ev.train_objective,
            "grad_norm_sq": ev.grad_norm_sq,
            "local_train_loss": ev.local_train_loss,
            "tracker_error": ev.tracker_error,
            "bytes_sent_per_node": counters[0].item(),
            "bytes_received_per_node": counters[1].item(),
            "bytes_sent_max_node": most[0].item(),
            # neighbour messages that carried a payload (an event-triggered round that skips sends none)
            "messages_sent_per_node": counters[9].item(),
            # asynchronous gossip: averagings other nodes applied between a gradient's read and its write
            "staleness_mean": (counters[11] / counters[12]).item() if counters[12] > 0 else 0.0,
            "staleness_max": most[2].item(),
            # a pipeline's activations and their gradients between stages (0 without stages), mean over ranks
            "activation_bytes_sent_per_node": counters[8].item(),
            # mean over nodes and sampled steps since the last evaluation (none sampled: NaN)
            "compression_error": (error[0] / error[1]).item() if error[1] > 0 else
            (0.0 if self.node.lossless else float("nan")),
        }
        row.update({f"consensus_distance_stage{s}": d for s, d in enumerate(ev.stage_consensus)})
        nodes = self._node_rows(epoch, ev, compute)
        if self.writer:
            self.writer.add_metrics(row)
            self.writer.add_node_metrics(nodes)
            self.logger.log(row)
        if epoch > 0:
            self.log(f"epoch {epoch:>3}/{self.cfg['trainer']['epochs']} | train loss {train_loss:.4f} | "
                     f"test acc {ev.test_acc:.4f} (avg), {ev.local_test_acc_mean:.4f} (local mean) | "
                     f"consensus {ev.consensus_distance:.2e} | {row['bytes_sent_per_node'] / 1e6:.2f} MB/node | "
                     f"{row['wall_time_s']:.1f} s")
        return row


    def _node_rows(self, epoch: int, ev, compute: float) -> list[dict[str, Any]]:
        """One row per node (every node fills its own row of a table that is then summed)."""
        c, k = self.comm, self.comm.counters
        fields = ("local_test_acc", "distance_to_average", "bytes_sent", "bytes_received", "compute_time_s",
                  "compress_time_s", "comm_time_s", "wait_time_s", "bubble_time_s", "activation_bytes_sent",
                  "messages_sent", "staleness_mean")
        staleness = k.staleness_sum / k.stale_steps if k.stale_steps else 0.0
        mine = torch.tensor([ev.node_test_acc, ev.node_distance, k.bytes_sent, k.bytes_received, compute,
                             k.compress_time_s, k.comm_time_s, k.wait_time_s, k.bubble_time_s,
                             k.activation_bytes_sent, k.messages_sent, staleness, self.optimizer.t],
                            dtype=torch.float64)
        table = c.allgather(mine).tolist()
        clocks = self.network.clocks.tolist() if self.network else [float("nan")] * c.size
        stage = self.node.pipeline
        place = stage.layout.placement.stage_of if stage else (lambda rank: (rank, 0))
        # "step": each node's own count (an asynchronous method's nodes take different numbers)
        return [{"epoch": epoch, "step": int(table[r][-1]), "node": r, "replica": place(r)[0], "stage": place(r)[1],
                 **dict(zip(fields, table[r])), "sim_time_s": clocks[r]} for r in range(c.size)]

    def _metric_traffic(self) -> dict[str, float]:
        """Evaluation/logging reduction bytes, mean over nodes (kept out of the training counts)."""
        k = self.comm.counters
        traffic = torch.tensor([k.metric_bytes_sent, k.metric_bytes_received], dtype=torch.float64)
        self.comm.allreduce_(traffic, "mean")
        return {"metric_bytes_sent_per_node": traffic[0].item(), "metric_bytes_received_per_node": traffic[1].item()}


def _check_settings(cfg: Mapping[str, Any]) -> None:
    t = cfg["trainer"]
    if t["on_nonfinite"] not in ("stop", "skip"):
        raise UserError(f"trainer.on_nonfinite must be stop or skip; got {t['on_nonfinite']}")
    if t["checkpoint_every"] < 0:
        raise UserError(f"trainer.checkpoint_every must be >= 0 (epochs; 0: only on signals); "
                        f"got {t['checkpoint_every']}")
    for key in ("epochs", "batch_size", "eval_every"):
        if t[key] < 1:
            raise UserError(f"trainer.{key} must be >= 1; got {t[key]}")
    if t["objective_samples"] is not None and t["objective_samples"] < 0:
        raise UserError(f"trainer.objective_samples must be >= 0 (0: not measured) or null (the whole shard); "
                        f"got {t['objective_samples']}")
    if t["target_acc"] is not None and not 0 < t["target_acc"] <= 1:
        raise UserError(f"trainer.target_acc must be in (0, 1] (a test accuracy) or null; got {t['target_acc']}")
    if cfg["seed"] < 0:
        raise UserError(f"seed must be >= 0; got {cfg['seed']}")
