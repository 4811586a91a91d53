"""One rank's share of a pipelined run: its stage of its replica's pipeline.

Built by ``build_node`` for ``parallel=pipeline`` with more than one stage, under mpirun:

1. the split of the model's blocks into S stages (``split.py``; measured costs are timed on
   rank 0 and broadcast, so every rank cuts the same way) and the placement of each
   replica's stages on a path of neighbouring ranks (``placement.py``);
2. torch.distributed started from the MPI world (``process_group.py``), one process group
   per replica for its activations, and one per replica and tied parameter;
3. this rank's stage module, run by ``torch.distributed.pipelining``'s ``PipelineStage`` and
   schedule (GPipe or 1F1B), and a ``StageMeter`` for its activation bytes and busy time;
4. the MPI sub-communicator of the replicas holding this stage: the optimizer gossips the
   stage's flat parameters over it, on the replicas' graph (``replica_topology``).

The loss of a step is the batch's mean: each microbatch adds its summed loss over the
batch's loss terms (the engine's own 1/M scaling is off), so microbatches of any size give
the gradient of the same objective as the data-parallel run.

Tied parameters (char_gpt's head and token embedding) that the split puts on different
stages are one copy per stage; their gradients are summed over those stages after each
step, so the copies take the same steps. With exact gossip they stay equal; a compressed
gossip mixes each copy with its own compression error, so they can drift apart by it (the
evaluation uses the earliest stage's copy).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from mpi4py import MPI
from torch import nn
from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe

from compoptim.comm.mpi import MPICommunicator
from compoptim.errors import UserError
from compoptim.parallel.engine import pipeline_step
from compoptim.parallel.meter import StageMeter
from compoptim.parallel.placement import Placement, replica_topology
from compoptim.parallel.plan import ParallelPlan
from compoptim.parallel.process_group import init_from_mpi
from compoptim.parallel.split import Split, balanced_split, block_costs, manual_split, parameter_costs

_SCHEDULES = {"gpipe": ScheduleGPipe, "1f1b": Schedule1F1B}
# The targets of padding samples: no class, no character, no value.
_PAD_INDEX, _PAD_FLOAT = -100, float("nan")


@dataclass(frozen=True)
class StageLayout:
    """Who holds what: the split, the placement, and this rank's replica and stage."""

    split: Split
    placement: Placement
    replica: int
    stage: int

    @property
    def stages(self) -> int:
        return self.split.stages

    @property
    def replicas(self) -> int:
        return len(self.placement.replicas)

    def describe(self, blocks: list[nn.Module]) -> dict[str, Any]:
        """What parallel.json records and the run's start prints: per stage its blocks,
        parameters and cost; the ranks of each replica and the hops of its stage links."""
        b = self.split.bounds

        def parameters(s: int) -> int:
            return int(sum(p.numel() for p in nn.ModuleList(blocks[b[s]:b[s + 1]]).parameters()))

        return {"stages": [{"blocks": [b[s], b[s + 1] - 1], "parameters": parameters(s), "cost": cost}
                           for s, cost in enumerate(self.split.stage_costs())],
                "balance": self.split.balance, "replicas": [list(r) for r in self.placement.replicas],
                "hops": list(self.placement.hops), "bounds": list(b), "block_costs": list(self.split.costs)}


def plan_layout(plan: ParallelPlan, blocks: list[nn.Module], placement: Placement, rank: int,
                costs: list[float], bounds: list[int] | None = None) -> StageLayout:
    """The split of ``blocks`` (``bounds``: the one a resumed run recorded, since measured
    costs vary from run to run) and this rank's place; checks only, no communication."""
    if bounds is not None:
        split = Split(tuple(bounds), tuple(costs))
        if split.stages != plan.stages or bounds[-1] != len(blocks):
            raise UserError(f"the run's recorded split {bounds} does not fit parallel.stages={plan.stages} and the "
                            f"model's {len(blocks)} blocks")
    elif plan.split is not None:
        split = manual_split(plan.split, costs)
    else:
        split = balanced_split(costs, plan.stages)
    replica, stage = placement.stage_of(rank)
    return StageLayout(split, placement, replica, stage)


def build_pipeline_rank(plan: ParallelPlan, placement: Placement, model: nn.Module, comm: MPICommunicator,
                        example: torch.Tensor, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                        device: torch.device, batch_size: int,
                        recorded: Mapping[str, Any] | None = None) -> PipelineRank:
    """This rank's stage of ``model`` (a model of the zoo, whose ``blocks()`` the split cuts);
    ``example``: a microbatch of inputs for the measured costs; ``loss(output, target)``: the
    summed loss of a microbatch; ``recorded``: the layout a resumed run wrote (parallel.json)."""
    blocks = model.blocks()
    if plan.stages > len(blocks):  # before the costs' broadcast: every rank refuses alike
        balanced_split([0.0] * len(blocks), plan.stages)
    if recorded is None:
        costs, bounds = agreed_block_costs(plan, blocks, example, comm.comm), None
    else:
        costs, bounds = list(recorded["block_costs"]), list(recorded["bounds"])
    layout = plan_layout(plan, blocks, placement, comm.rank, costs, bounds)
    return PipelineRank(plan, layout, blocks, comm, loss, device, batch_size)


def agreed_block_costs(plan: ParallelPlan, blocks: list[nn.Module], example: torch.Tensor,
                       world: MPI.Comm) -> list[float]:
    """The block costs the split balances, the same on every rank (rank 0's, broadcast)."""
    if plan.cost == "parameters":
        return parameter_costs(blocks)
    return world.bcast(block_costs(blocks, example) if world.Get_rank() == 0 else None, root=0)


class PipelineRank:
    """This rank's stage: ``module`` (what the optimizer's flat buffers hold), ``gossip``
    (the communicator of its replicas) and ``step(x, y)``."""

    def __init__(self, plan: ParallelPlan, layout: StageLayout, blocks: list[nn.Module], comm: MPICommunicator,
                 loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], device: torch.device,
                 batch_size: int) -> None:
        self.plan, self.layout, self.comm = plan, layout, comm
        s, stages, replica = layout.stage, layout.stages, layout.replica
        b = layout.split.bounds
        self.blocks = blocks
        self.stage_modules = [nn.Sequential(*blocks[b[i]:b[i + 1]]) for i in range(stages)]
        self.module = self.stage_modules[s]
        if device.type == "cuda":
            _check_own_gpus(comm.comm, device)
        init_from_mpi(comm.comm, "nccl" if device.type == "cuda" else "gloo")
        # Every rank creates every group, in one order (torch.distributed's rule).
        pipes = [dist.new_group(list(ranks)) for ranks in layout.placement.replicas]
        self.ties = self._tie_groups(layout)
        self.meter = StageMeter(s, stages)
        self._terms = 1
        engine_stage = PipelineStage(self.meter.wrap(self.module), s, stages, device, group=pipes[replica])
        # A replica's path need not run in rank order: map each stage to its rank in the group.
        group = pipes[replica]
        engine_stage.stage_index_to_group_rank = {i: dist.get_group_rank(group, rank)
                                                  for i, rank in enumerate(layout.placement.replicas[replica])}
        self.batch_size = batch_size

        self._padded = False

        def batch_share(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if self._padded:  # only a shard's short last batch carries padding samples
                keep = ~_padding(y)
                out, y = out[keep], y[keep]
            return loss(out, y) / self._terms

        self.schedule = _SCHEDULES[plan.schedule](engine_stage, n_microbatches=plan.microbatches,
                                                  loss_fn=batch_share, scale_grads=False)
        mine = comm.comm.Split(color=s, key=replica)
        self.gossip = MPICommunicator(mine, replica_topology(comm.topology, layout.placement),
                                      cuda_aware=comm.cuda_aware, timeout_s=comm.timeout_s,
                                      shared_memory=comm.shared_memory)
        self.gossip.counters = comm.counters  # one node's traffic: gossip, activations and metrics together
        self.replica_comm = comm.comm.Split(color=replica, key=s)

    def _tie_groups(self, layout: StageLayout) -> list[tuple[nn.Parameter, Any]]:
        """(parameter, process group of this replica's stages that hold it) for each
        parameter held by more than one stage, where this rank's stage is one of them."""
        b, mine = layout.split.bounds, []
        holders: dict[int, tuple[nn.Parameter, list[int]]] = {}
        for s in range(layout.stages):
            for p in nn.ModuleList(self.blocks[b[s]:b[s + 1]]).parameters():
                holders.setdefault(id(p), (p, []))[1].append(s)
        for p, stages in holders.values():
            if len(stages) < 2:
                continue
            for r, ranks in enumerate(layout.placement.replicas):
                group = dist.new_group(sorted(ranks[s] for s in stages))
                if r == layout.replica and layout.stage in stages:
                    mine.append((p, group))
        return mine

    def step(self, x: torch.Tensor, y: torch.Tensor, terms: int) -> torch.Tensor | None:
        """One step of the schedule on this batch (``terms``: its loss terms); the batch's
        mean loss on the last stage, None on the others. Gradients accumulate into the
        stage's parameters (the caller zeroes them). The engine sizes its buffers at the
        first step, so a short batch (a shard's last) is padded to the full size with
        samples whose target marks them as padding: they add nothing to the loss."""
        stages, s = self.layout.stages, self.layout.stage
        self._terms = terms
        self._padded = len(y) < self.batch_size
        x, y = _pad(x, y, self.batch_size)
        last = s == stages - 1
        losses: list[torch.Tensor] = []
        counters = self.comm.counters
        start, busy = time.perf_counter(), self.meter.busy_s
        sent = self.meter.bytes_sent
        pipeline_step(self.schedule, s, stages, x, y, losses)
        self.meter.close()
        self.meter.count_step(self.plan.microbatches)
        for p, group in self.ties:
            dist.all_reduce(p.grad, group=group)
        elapsed = time.perf_counter() - start
        counters.pipeline_time_s += elapsed
        counters.bubble_time_s += max(0.0, elapsed - (self.meter.busy_s - busy))
        counters.activation_bytes_sent += self.meter.bytes_sent - sent
        return torch.stack(losses).sum().detach() if last else None

    def gather_replica(self) -> None:
        """Fill the other stages' blocks of this rank's model (whose own stage's tensors are
        this stage's) with its replica's values: parameters and floating buffers, gathered
        from the replica's ranks (metric traffic). A tied parameter takes the earliest
        stage's copy."""
        sizes = [sum(t.numel() for t in _stage_tensors(m)) for m in self.stage_modules]
        received = self._gather(torch.cat([t.detach().reshape(-1) for t in _stage_tensors(self.module)]), sizes)
        offsets = np.cumsum([0, *sizes])
        with torch.no_grad():
            for s in reversed(range(len(sizes))):  # the earliest stage writes a tied tensor last
                values = torch.from_numpy(received[offsets[s]:offsets[s + 1]])
                at = 0
                for t in _stage_tensors(self.stage_modules[s]):
                    t.copy_(values[at:at + t.numel()].view_as(t))
                    at += t.numel()

    def whole_vector(self, mine: torch.Tensor | None, whole: nn.Module) -> torch.Tensor | None:
        """A vector over this stage's parameters (the optimizer's gradient tracker) as one over
        the replica's whole model, in ``whole``'s parameter order: gathered from the replica's
        stages (metric traffic); a tied parameter takes the earliest stage's entries. None
        stays None (every stage runs the same algorithm, so all or none have one)."""
        if mine is None:
            return None
        trainable = [[p for p in m.parameters() if p.requires_grad] for m in self.stage_modules]
        received = self._gather(mine, [sum(p.numel() for p in ps) for ps in trainable])
        pieces, at = [], 0
        for p in (p for ps in trainable for p in ps):
            pieces.append((id(p), received[at:at + p.numel()]))
            at += p.numel()
        values = dict(reversed(pieces))  # a tied tensor: the earliest stage's copy is written last
        vector = np.concatenate([values[id(p)] for p in whole.parameters() if p.requires_grad])
        return torch.from_numpy(vector).to(mine.device)

    def _gather(self, mine: torch.Tensor, sizes: list[int]) -> np.ndarray:
        """Every stage's vector of this replica (``sizes``: their lengths, in stage order),
        concatenated in float64 on the host: metric traffic."""
        send = mine.detach().to(torch.float64).cpu().numpy()
        received = np.empty(sum(sizes), dtype=np.float64)
        self.replica_comm.Allgatherv(send, [received, sizes])
        counters = self.comm.counters
        counters.metric_bytes_sent += send.nbytes * (len(sizes) - 1)
        counters.metric_bytes_received += received.nbytes - send.nbytes
        return received

    def entry_stages(self, whole: nn.Module) -> torch.Tensor:
        """For each entry of ``whole``'s parameter vector, the earliest stage holding it (for
        the consensus distance per stage)."""
        first = {}
        for s in reversed(range(len(self.stage_modules))):
            for p in self.stage_modules[s].parameters():
                first[id(p)] = s
        return torch.cat([torch.full((p.numel(),), first[id(p)], dtype=torch.long) for p in whole.parameters()])


def _check_own_gpus(world: MPI.Comm, device: torch.device) -> None:
    """NCCL, the engine's transport between GPUs, needs one GPU per rank."""
    import socket

    places = world.allgather((socket.gethostname(), torch.cuda.current_device() if device.index is None
                              else device.index))
    if len(set(places)) < len(places):
        raise UserError(f"parallel=pipeline on GPUs needs one GPU per rank (NCCL connects stages on distinct GPUs), "
                        f"but {len(places)} ranks share {len(set(places))} GPU(s): start as many ranks per machine "
                        f"as it has GPUs, or use trainer.device=cpu")


def _pad(x: torch.Tensor, y: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    missing = size - len(y)
    if missing <= 0:
        return x, y
    mark = torch.full((missing, *y.shape[1:]), _PAD_FLOAT if y.is_floating_point() else _PAD_INDEX,
                      dtype=y.dtype, device=y.device)
    return torch.cat([x, x[:1].expand(missing, *x.shape[1:])]), torch.cat([y, mark])


def _padding(y: torch.Tensor) -> torch.Tensor:
    """Which samples of a microbatch are padding (per sample)."""
    marked = torch.isnan(y) if y.is_floating_point() else y == _PAD_INDEX
    return marked.reshape(len(y), -1).all(dim=1)


def _stage_tensors(module: nn.Module) -> list[torch.Tensor]:
    return [*module.parameters(), *(b for b in module.buffers() if b.is_floating_point())]


