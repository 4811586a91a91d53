"""Run under mpirun: AD-PSGD (the optimizer itself, over MPICommunicator and its windows) on a
convex least-squares problem whose local optima agree (b_i = A_i x*), full local gradients,
constant step, rank 1 slowed: every node's model converges to x*. Prints "ok <error>"."""

import sys
import time

import torch
from mpi4py import MPI
from torch import nn

from compoptim.comm.mpi import MPICommunicator
from compoptim.compress import CompressContext, Identity
from compoptim.optim import FlatParameters
from compoptim.optim.adpsgd import ADPSGD
from compoptim.topology import ring

D, ROWS, STEPS, SLOW_S = 10, 20, int(sys.argv[1]) if len(sys.argv) > 1 else 1500, 0.0005


class Vector(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.x = nn.Parameter(torch.zeros(D, dtype=torch.float64))


def main() -> None:
    world = MPI.COMM_WORLD
    n, rank = world.Get_size(), world.Get_rank()
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, ROWS, D, generator=g, dtype=torch.float64)
    x_star = torch.randn(D, generator=g, dtype=torch.float64)
    b = a @ x_star  # every node's optimum is x*
    comm = MPICommunicator(world, ring(n))
    flat = FlatParameters(Vector())
    opt = ADPSGD(flat, comm, lambda stream: Identity(CompressContext(dtype=torch.float64)), lr=0.05, seed=1)
    for _ in range(STEPS):
        opt.begin_step()
        flat.grads.copy_(a[rank].T @ (a[rank] @ flat.params - b[rank]) / ROWS)
        opt.step()
        if rank == 1:
            time.sleep(SLOW_S)
    world.Barrier()
    opt.window.read_into(flat.params)
    error = ((flat.params - x_star).norm() / x_star.norm()).item()
    errors = world.gather(error)
    opt.close()
    if rank == 0:
        assert max(errors) < 1e-6, errors
        print(f"ok {max(errors):.2e}", flush=True)


if __name__ == "__main__":
    main()
