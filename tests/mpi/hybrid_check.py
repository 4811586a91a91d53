"""Run under ``mpirun -np 4``: 2 replicas of a 2-stage pipeline, each stage's parameters
gossiped by D-PSGD among the replicas holding that stage (an MPI sub-communicator over a
ring of the replicas), against D-PSGD on 2 nodes with the whole model (in-process backend)
on the same batches. Rank 0 prints the largest difference of the parameters.

    mpirun -np 4 python tests/mpi/hybrid_check.py
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from mpi4py import MPI
from torch import nn
from torch.distributed.pipelining import PipelineStage, ScheduleGPipe

from compoptim.comm import run_local
from compoptim.comm.mpi import MPICommunicator
from compoptim.compress import CompressContext, build_compressor
from compoptim.models import build_model
from compoptim.optim import FlatParameters, build_optimizer
from compoptim.parallel import balanced_split, parameter_costs, place_stages
from compoptim.parallel.engine import pipeline_step
from compoptim.parallel.process_group import init_from_mpi
from compoptim.topology import ring

STAGES, STEPS, BATCH, MICROBATCHES = 2, 4, 16, 4
OPTIMIZER = {"name": "dsgd", "lr": 0.1, "overlap": False}
DTYPE = torch.float64


def model():
    torch.manual_seed(0)
    return build_model({"name": "mlp", "hidden": [24, 20, 16]}, (1, 8, 8), 10).to(DTYPE)


def batches(replica):
    g = torch.Generator().manual_seed(100 + replica)
    return [(torch.randn(BATCH, 1, 8, 8, generator=g, dtype=DTYPE), torch.randint(0, 10, (BATCH,), generator=g))
            for _ in range(STEPS)]


def optimizer(flat, comm):
    def compressors(_stream):
        return build_compressor({"name": "none"}, CompressContext(layout=flat.shapes, dtype=DTYPE))

    return build_optimizer(OPTIMIZER, flat, comm, compressors)


def reference(replicas):
    """D-PSGD over a ring of ``replicas`` nodes, whole models: each node's blocks' parameters."""
    models = [model() for _ in range(replicas)]  # built here: torch's global RNG is not for threads

    def node(comm):
        m = models[comm.rank]
        flat = FlatParameters(m)
        opt = optimizer(flat, comm)
        for x, y in batches(comm.rank):
            opt.begin_step()
            flat.zero_grad()
            F.cross_entropy(m(x), y).backward()
            opt.step()
        return [[p.detach().clone() for p in b.parameters()] for b in m.blocks()]

    return run_local(ring(replicas), node)


def main() -> None:
    world = MPI.COMM_WORLD
    rank, size = world.Get_rank(), world.Get_size()
    init_from_mpi(world)
    placement = place_stages(ring(size), STAGES)
    replica, stage_index = placement.stage_of(rank)
    assert all(list(p) == sorted(p) for p in placement.replicas)  # group ranks follow the stage order
    groups = [dist.new_group(list(p)) for p in placement.replicas]  # every rank creates every group, in order
    replicas = size // STAGES
    gossip = MPICommunicator(world.Split(color=stage_index, key=replica), ring(replicas))

    blocks = model().blocks()
    split = balanced_split(parameter_costs(blocks), STAGES)
    first, last = split.bounds[stage_index], split.bounds[stage_index + 1]
    part = nn.Sequential(*blocks[first:last])
    flat = FlatParameters(part)
    opt = optimizer(flat, gossip)
    schedule = ScheduleGPipe(PipelineStage(part, stage_index, STAGES, torch.device("cpu"), group=groups[replica]),
                             n_microbatches=MICROBATCHES, loss_fn=F.cross_entropy)
    for x, y in batches(replica):
        opt.begin_step()
        flat.zero_grad()
        pipeline_step(schedule, stage_index, STAGES, x, y)
        flat.check_attached()  # the engine accumulated into the flat gradient the optimizer reads
        opt.step()

    expected = reference(replicas)[replica]
    theirs = torch.cat([p.reshape(-1) for b in expected[first:last] for p in b])
    diff = world.allreduce((flat.params.detach() - theirs).abs().max().item(), op=MPI.MAX)
    spread = world.allreduce(float(gossip.counters.bytes_sent), op=MPI.SUM)
    start = torch.cat([p.detach().reshape(-1) for b in model().blocks()[first:last] for p in b.parameters()])
    moved = world.allreduce((flat.params.detach() - start).abs().max().item(), op=MPI.MAX)
    if rank == 0:
        print(f"replicas {[list(p) for p in placement.replicas]} stages {split.blocks_per_stage()}: "
              f"max |hybrid - dsgd| = {diff:.3e}, parameters moved {moved:.3e}, gossip bytes {spread:.0f}", flush=True)


if __name__ == "__main__":
    main()
