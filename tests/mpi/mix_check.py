"""Run under mpirun: MPICommunicator against W @ X and against the in-process backend.

Uses a random connected graph with random (non-uniform) symmetric doubly stochastic
weights, so a received buffer paired with the wrong neighbour or weight is caught, and
the named irregular and time-varying topologies (star, torus, one-peer exponential) over
a whole period, so changing neighbour sets are covered. Prints "ok" on rank 0; any
mismatch raises (non-zero exit).
"""

import numpy as np
import torch
from mpi4py import MPI

from compoptim.comm import run_local
from compoptim.comm.mpi import MPICommunicator
from compoptim.compress import CompressContext, Identity
from compoptim.topology import Topology, one_peer_exponential, star, torus


def random_mixing_matrix(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    adjacency = np.zeros((n, n))
    for i in range(n):  # a ring keeps it connected; random chords make it irregular
        adjacency[i, (i + 1) % n] = adjacency[(i + 1) % n, i] = 1.0
    for _ in range(n):
        i, j = rng.integers(0, n, 2)
        if i != j:
            adjacency[i, j] = adjacency[j, i] = 1.0
    np.fill_diagonal(adjacency, 0.0)
    bound = 1.0 / (adjacency.sum(axis=1).max() + 1.0)
    weights = np.triu(rng.uniform(0.2, 1.0, (n, n)) * bound * adjacency, 1)
    w = weights + weights.T
    np.fill_diagonal(w, 1.0 - w.sum(axis=1))
    return w


def check(world: MPI.Comm, topology: Topology) -> None:
    n, rank = world.Get_size(), world.Get_rank()
    xs = torch.randn(n, 1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    compressor = Identity(CompressContext(dtype=torch.float64))
    rounds = max(3, topology.period + 1)  # buffers reused across steps, every round of the schedule

    def mix(comm):
        out = torch.empty(xs.shape[1], dtype=torch.float64)
        x = xs[comm.rank].clone()
        for step in range(rounds):
            comm.neighbor_mix(compressor.encode(x), compressor, out, step=step)
            x.copy_(out)
        total = comm.allreduce_(x.clone(), "sum")
        return x, total, comm.counters.bytes_sent

    mine, total, sent = mix(MPICommunicator(world, topology))
    expected = xs
    for step in range(rounds):
        expected = torch.tensor(topology.matrix(step)) @ expected
    torch.testing.assert_close(mine, expected[rank], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(total, expected.sum(dim=0), rtol=1e-12, atol=1e-12)
    degrees = sum(len(topology.neighbors(rank, step)) for step in range(rounds))
    assert sent == degrees * 1000 * 8, (topology.name, sent)
    local = run_local(topology, mix)[rank]
    assert torch.equal(mine, local[0]) and torch.equal(total, local[1]), f"{topology.name}: MPI and local differ"


def main() -> None:
    world = MPI.COMM_WORLD
    n = world.Get_size()
    for topology in (Topology("random", (random_mixing_matrix(n, seed=n),)), star(n), torus(n),
                     one_peer_exponential(n)):
        check(world, topology)
    world.Barrier()
    if world.Get_rank() == 0:
        print("ok", flush=True)


if __name__ == "__main__":
    main()
