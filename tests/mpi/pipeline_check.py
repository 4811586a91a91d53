"""Run under ``mpirun -np S``: an S-stage pipeline (torch.distributed.pipelining, gloo started
from MPI) trains an MLP for a few SGD steps; every rank compares its stage's parameters with
single-process training on the same batches and prints the largest difference (rank 0).

    mpirun -np 2 python tests/mpi/pipeline_check.py gpipe float64
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from mpi4py import MPI
from torch import nn
from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe

from compoptim.models import build_model
from compoptim.parallel import balanced_split, parameter_costs
from compoptim.parallel.engine import pipeline_step
from compoptim.parallel.process_group import init_from_mpi

SCHEDULES = {"gpipe": ScheduleGPipe, "1f1b": Schedule1F1B}
STEPS, BATCH, MICROBATCHES, LR = 4, 16, 4, 0.1


def model(dtype):
    torch.manual_seed(0)
    return build_model({"name": "mlp", "hidden": [24, 20, 16, 12, 10]}, (1, 8, 8), 10).to(dtype)


def batches(dtype):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(BATCH, 1, 8, 8, generator=g, dtype=dtype), torch.randint(0, 10, (BATCH,), generator=g))
            for _ in range(STEPS)]


def main() -> None:
    schedule_name, dtype = sys.argv[1], getattr(torch, sys.argv[2])
    world = MPI.COMM_WORLD
    rank, stages = world.Get_rank(), world.Get_size()
    init_from_mpi(world)

    reference = model(dtype)  # single process, whole model, the same batches
    opt = torch.optim.SGD(reference.parameters(), lr=LR)
    for x, y in batches(dtype):
        opt.zero_grad()
        F.cross_entropy(reference(x), y).backward()
        opt.step()

    whole = model(dtype)
    blocks = whole.blocks()
    split = balanced_split(parameter_costs(blocks), stages)
    first, last = split.bounds[rank], split.bounds[rank + 1]
    part = nn.Sequential(*blocks[first:last])
    stage = PipelineStage(part, rank, stages, torch.device("cpu"))
    schedule = SCHEDULES[schedule_name](stage, n_microbatches=MICROBATCHES, loss_fn=F.cross_entropy)
    opt = torch.optim.SGD(part.parameters(), lr=LR)
    for x, y in batches(dtype):
        opt.zero_grad()
        pipeline_step(schedule, rank, stages, x, y)
        opt.step()

    ref_blocks = reference.blocks()
    mine = torch.cat([p.detach().reshape(-1) for p in part.parameters()])
    theirs = torch.cat([p.detach().reshape(-1) for b in ref_blocks[first:last] for p in b.parameters()])
    diff = world.allreduce((mine - theirs).abs().max().item(), op=MPI.MAX)
    moved = world.allreduce((mine - torch.cat([p.detach().reshape(-1) for b in model(dtype).blocks()[first:last]
                                                for p in b.parameters()])).abs().max().item(), op=MPI.MAX)
    if rank == 0:
        print(f"stages {split.blocks_per_stage()} {schedule_name} {sys.argv[2]}: max |pipeline - single| = {diff:.3e}, "
              f"parameters moved {moved:.3e}", flush=True)


if __name__ == "__main__":
    main()
