"""Run under mpirun: the invariants of asynchronous pairwise averaging over ModelWindow.

Rank 1 is slowed (it sleeps between its steps); every rank averages with a random ring
neighbour and adds a unit step of its own, K times. Checks, in float64: the sum of the
models is the starting sum plus every step (the averagings preserve it and no update is
lost); the averaging counters add up to the averagings done; the fast ranks did not wait
for the slow one; the step tickets hand out exactly the budget. Prints "ok" on rank 0.
"""

import time

import numpy as np
import torch
from mpi4py import MPI

from compoptim.comm.rma import ModelWindow

D, K, SLOW_S = 50, 200, 0.01


def main() -> None:
    world = MPI.COMM_WORLD
    n, rank = world.Get_size(), world.Get_rank()
    starts = torch.randn(n, D, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    window = ModelWindow(world, starts[rank])
    rng = np.random.default_rng(rank)
    update = torch.zeros(D, dtype=torch.float64)
    update[rank % D] = 1.0
    began = time.perf_counter()
    for _ in range(K):
        j = int(rng.choice([(rank - 1) % n, (rank + 1) % n]))
        window.average_and_add(j, update)
        if rank == 1:
            time.sleep(SLOW_S)
    elapsed = time.perf_counter() - began
    world.Barrier()
    x = torch.empty(D, dtype=torch.float64)
    counter = window.read_into(x)
    total = np.zeros(D)
    world.Allreduce(x.numpy(), total)
    expected = starts.sum(dim=0).numpy() + K * np.bincount(np.arange(n) % D, minlength=D)
    np.testing.assert_allclose(total, expected, rtol=0, atol=1e-9)
    counters = world.allreduce(counter)
    assert counters == n * K, (counters, n * K)  # every averaging counted once, at its target
    times = world.allgather(elapsed)
    fast = max(t for r, t in enumerate(times) if r != 1)
    assert fast < times[1] / 3, times  # the others kept stepping while rank 1 slept

    window.reset_tickets()
    budget, taken = 5 * n, 0
    while window.take_ticket() < budget:
        taken += 1
        if rank == 1:
            time.sleep(SLOW_S)
    assert world.allreduce(taken) == budget
    window.free()
    if rank == 0:
        print("ok", flush=True)


if __name__ == "__main__":
    main()
