"""build_node: the one place a node of a run is assembled from its config.

Every backend (one MPI rank per node, or all nodes in one process) and every script builds
its nodes here, from the plain config values and the node's communicator and device:
data shard, model, flat buffers, metered compressors, optimizer, schedule, evaluator.
Building does no communication, so a bad setting fails on every node before any
collective starts.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from compoptim.comm.base import Communicator
from compoptim.comm.network import NETWORKS, NetworkModel, NodeClock
from compoptim.compress import CompressContext, Compressor, Metered, build_compressor
from compoptim.compress.randomness import derived_seed
from compoptim.data import ShardLoader, build_partition, label_histogram, load_dataset
from compoptim.data.base import Dataset
from compoptim.errors import UserError
from compoptim.models import build_model
from compoptim.optim import FlatParameters, build_optimizer
from compoptim.optim.algorithms import ALGORITHMS
from compoptim.optim.base import DecentralizedOptimizer
from compoptim.parallel.placement import Placement, place_stages
from compoptim.parallel.plan import PARALLEL, ParallelPlan
from compoptim.registry import to_plain
from compoptim.train.evaluate import Evaluator
from compoptim.train.loss import task_loss
from compoptim.train.record import dataset_hash
from compoptim.train.schedules import LRSchedule

# Model init draws from torch's global RNG; nodes built in parallel threads must not
# interleave seeding and drawing.
_MODEL_INIT_LOCK = threading.Lock()


class SharedParts:
    """What the nodes of one process build once and share: the dataset (read-only; each
    node's shard is its own copy) and the model every node starts from (copied per node,
    which gives the same tensors as building it again from the same seed). The in-process
    backend hands one to all its nodes, so 1024 nodes load and hold the data once."""

    def __init__(self) -> None:
        self._datasets: dict[str, Dataset] = {}
        self._models: dict[tuple[Any, ...], tuple[nn.Module, torch.Tensor]] = {}

    def dataset(self, cfg: Mapping[str, Any]) -> Dataset:
        key = json.dumps(cfg, sort_keys=True)
        if key not in self._datasets:
            self._datasets[key] = load_dataset(cfg)
        return self._datasets[key]

    def model(self, cfg: Mapping[str, Any], data: Dataset, seed: int, device: torch.device) -> nn.Module:
        """A copy of the initial model, leaving torch's RNG where building it from ``seed`` does."""
        key = (json.dumps(cfg, sort_keys=True), tuple(data.input_shape), data.num_classes, seed)
        with _MODEL_INIT_LOCK:
            if key not in self._models:
                torch.manual_seed(seed)
                initial = build_model(cfg, data.input_shape, data.num_classes)
                self._models[key] = initial, torch.get_rng_state()
            initial, rng = self._models[key]
            torch.set_rng_state(rng)
            return copy.deepcopy(initial).to(device)


@dataclass
class Node:
    """One node's share of a run: what the training loop steps, evaluates and saves."""

    comm: Communicator
    device: torch.device
    task: str
    model: nn.Module
    flat: FlatParameters
    loader: ShardLoader
    optimizer: DecentralizedOptimizer
    schedule: LRSchedule
    evaluator: Evaluator
    samples_per_epoch: int
    label_histogram: list[list[int]]  # node 0 only (it writes partition.json)
    lossless: bool  # the compressor sends exact vectors (its compression error is 0)
    dataset_hash: str | None  # node 0 only (it writes the records): digest of the data trained and tested on
    bits_per_element: float  # wire bits per model entry of one message (32: uncompressed fp32)
    network: NetworkModel  # the network time model (its clock is ``comm.clock``)
    objective_samples: int  # training samples of all nodes that train_objective and grad_norm_sq are measured on
    num_params: int  # the whole model's (a pipeline stage holds a part of them)
    pipeline: Any = None  # parallel.stage.PipelineRank of a pipelined run (None: data-parallel)


def build_node(cfg: Mapping[str, Any], comm: Communicator, device: torch.device,
               shared: SharedParts | None = None, recorded_layout: Mapping[str, Any] | None = None) -> Node:
    """Node ``comm.rank`` of the run ``cfg`` (plain values or a DictConfig; converted here);
    ``shared``: the parts built once for all nodes of this process (None: this node's own);
    ``recorded_layout``: a pipeline's layout recorded by the run being resumed (parallel.json;
    None: decide it).

    With ``parallel=pipeline`` and S > 1 stages, the node is one rank's stage of a replica
    (``parallel/stage.py``): it holds the replica's data shard, trains its stage's
    parameters and gossips them with the stage's other replicas; building it starts
    torch.distributed, after every setting is checked."""
    cfg = to_plain(cfg)
    shared = shared or SharedParts()
    t = cfg["trainer"]
    expected = cfg.get("nodes")
    if expected is not None and expected < 1:
        raise UserError(f"nodes must be >= 1 (the number of nodes this configuration is meant for) or null; "
                        f"got {expected}")
    if expected is not None and expected != comm.size:
        raise UserError(f"this configuration is meant for nodes={expected} (mpirun -np {expected}, or backend=local "
                        f"backend.nodes={expected}); got {comm.size} nodes: change the launch or set nodes=null")

    network = NETWORKS.build(cfg["network"])
    network.check_nodes(comm.size)
    _check_direction(cfg["optimizer"]["name"], comm.topology.name, comm.topology.directed)
    if ALGORITHMS[cfg["optimizer"]["name"]].facts.get("asynchronous") and (network.name != "ideal" or
                                                                           PARALLEL.build(cfg["parallel"]).pipelined):
        raise UserError(f"optimizer={cfg['optimizer']['name']} is asynchronous: the network time model "
                        f"(network={network.name}) and pipeline stages assume synchronous rounds; "
                        f"use network=ideal and parallel=data")
    plan = PARALLEL.build(cfg["parallel"])
    placement = _check_pipeline(cfg, plan, comm, network.name) if plan.pipelined else None
    # A pipeline's replica is one node of the decentralized problem: its S ranks share its shard.
    replica, replicas = (placement.stage_of(comm.rank)[0], len(placement.replicas)) if placement else \
        (comm.rank, comm.size)
    data = shared.dataset(cfg["dataset"])
    if replicas > len(data.y_train):
        raise UserError(f"{replicas} nodes but dataset={data.name} has only {len(data.y_train)} training samples")
    strata = data.partition_labels.numpy()
    shards = build_partition(cfg["dataset"]["partition"], strata, replicas, seed=cfg["seed"])
    loader = ShardLoader(data.x_train, data.y_train, shards[replica], t["batch_size"],
                         largest_shard=max(len(s) for s in shards), seed=_node_seed(cfg["seed"], replica),
                         device=device, augment=data.augment)

    def make_model() -> nn.Module:
        # Same seed on every node: all models start from the same point.
        return shared.model(cfg["model"], data, cfg["seed"], device)

    model = make_model()
    stage = None
    if placement is not None:
        from compoptim.parallel.stage import build_pipeline_rank  # torch.distributed only where it runs

        plan.check_batch(t["batch_size"], _has_batch_norm(model))
        stage = build_pipeline_rank(plan, placement, model, comm, loader.x[: t["batch_size"] // plan.microbatches],
                                    lambda out, y: task_loss(data.task, out, y, reduction="sum"), device,
                                    t["batch_size"], recorded=recorded_layout)
    trained = stage.module if stage else model
    gossip = stage.gossip if stage else comm
    flat = FlatParameters(trained)

    def context(stream: int) -> CompressContext:
        seed = cfg["seed"] if stream == 0 else derived_seed(cfg["seed"], stream)
        return CompressContext(layout=flat.shapes, dtype=flat.params.dtype, seed=seed, rank=comm.rank)

    def compressors(stream: int) -> Compressor:
        # One compressor per communicated variable, its random draws kept apart by stream,
        # every encode timed and sampled into this node's counters.
        return Metered(build_compressor(cfg["compressor"], context(stream)), comm.counters)

    # Built once up front: a bad setting fails here, before the optimizer; its wire bits per
    # model entry go to the summary for the report.
    probe = build_compressor(cfg["compressor"], context(0))
    optimizer = build_optimizer(cfg["optimizer"], flat, gossip, compressors)
    if optimizer.overlap:
        # Each parameter's gradient completes in turn: poll the exchange of x_t meanwhile.
        for p in trained.parameters():
            if p.requires_grad:  # a frozen tensor gets no gradient, and takes no hook
                p.register_post_accumulate_grad_hook(_poll(gossip))
    schedule = LRSchedule(t["lr_schedule"], len(loader), t["epochs"], t["warmup_epochs"], t["lr_milestones"],
                          t["lr_decay"])
    part = t["objective_samples"]  # f(x̄) on each shard's first `part` samples (None: all; 0: not measured)
    # A pipeline rank evaluates its replica's whole model, gathered from the stages (Evaluator).
    whole = WholeParameters(model, stage.gather_replica) if stage else flat
    evaluator = Evaluator(model, whole, make_model(), data.x_test.to(device), data.y_test.to(device), comm,
                          task=data.task, average_buffers_into_local=model.bn_stats == "averaged",
                          x_train=None if part == 0 else loader.x[:part],
                          y_train=None if part == 0 else loader.y[:part],
                          tracker=(lambda: stage.whole_vector(optimizer.tracker(), model)) if stage
                          else optimizer.tracker,
                          assemble=whole.refresh if stage else None,
                          entry_stages=stage.entry_stages(model) if stage else None)
    comm.clock = NodeClock(network, comm.counters)
    gossip.clock = comm.clock
    return Node(comm=comm, network=network, device=device, task=data.task, model=trained, flat=flat, loader=loader,
                optimizer=optimizer,
                schedule=schedule, evaluator=evaluator, samples_per_epoch=len(data.y_train),
                # only node 0 writes it (partition.json): n histograms on each of n nodes would grow as n^2
                label_histogram=label_histogram(strata, shards, int(strata.max()) + 1) if comm.rank == 0
                else [],
                lossless=probe.lossless, bits_per_element=probe.bits_per_element(flat.numel),
                dataset_hash=dataset_hash(data) if comm.rank == 0 else None,
                objective_samples=sum(len(shard[:part]) for shard in shards),
                num_params=sum(p.numel() for p in model.parameters() if p.requires_grad), pipeline=stage)


class WholeParameters:
    """A pipeline rank's view of its replica's whole model as one vector (``params``,
    ``numel``, in the model's parameter order), refreshed from the stages before each
    evaluation: what the Evaluator reads where a data-parallel node has its flat buffer."""

    def __init__(self, model: nn.Module, gather: Callable[[], None]) -> None:
        self.gather = gather
        self.tensors = [p for p in model.parameters() if p.requires_grad]
        self.numel = sum(p.numel() for p in self.tensors)
        self.params = torch.empty(self.numel, dtype=self.tensors[0].dtype, device=self.tensors[0].device)

    def refresh(self) -> None:
        self.gather()
        torch.cat([p.detach().reshape(-1) for p in self.tensors], out=self.params)


def _check_direction(optimizer: str, topology: str, directed: bool) -> None:
    """A directed topology only with an algorithm declared for one (push-sum methods)."""
    if directed and not ALGORITHMS[optimizer].facts.get("directed"):
        allowed = ", ".join(ALGORITHMS.with_fact("directed"))
        raise UserError(f"topology={topology} is directed (column-stochastic push weights), but optimizer={optimizer} "
                        f"needs an undirected topology (symmetric, doubly stochastic W); on a directed graph use "
                        f"optimizer={allowed}")


def _check_pipeline(cfg: Mapping[str, Any], plan: ParallelPlan, comm: Communicator, network: str) -> Placement:
    """What a pipeline cannot do, refused in one line before any collective; its placement."""
    if not hasattr(comm, "comm"):
        raise UserError(f"parallel.stages={plan.stages} runs the stages as MPI processes: start it with "
                        f"mpirun -np N compoptim-run backend=mpi (backend=local runs parallel.stages=1 only)")
    if comm.topology.directed:
        raise UserError(f"parallel.stages={plan.stages} places each replica along undirected links; "
                        f"topology={comm.topology.name} is directed: use an undirected topology")
    if network != "ideal":
        raise UserError(f"network={network}: the network time model covers the gossip of data-parallel runs, not a "
                        f"pipeline's activations; use network=ideal with parallel.stages={plan.stages}")
    if cfg["optimizer"].get("initial_gradient") == "full":
        raise UserError(f"optimizer.initial_gradient=full would run each replica's whole shard through the "
                        f"pipeline; set optimizer.initial_gradient=minibatch with parallel.stages={plan.stages}")
    if cfg["trainer"]["on_nonfinite"] != "stop":
        raise UserError("trainer.on_nonfinite=skip needs the loss on every rank, but only a pipeline's last stage "
                        "has it; use trainer.on_nonfinite=stop with parallel=pipeline")
    return place_stages(comm.topology, plan.stages)


def _has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _poll(comm: Communicator) -> Callable[[torch.Tensor], None]:
    return lambda _p: comm.progress()


def _node_seed(seed: int, rank: int) -> int:
    """A distinct, reproducible seed per (run seed, node) for data order."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])
