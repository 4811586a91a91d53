"""Run under mpirun: MPICommunicator against W @ X and against the in-process backend.

Uses a random connected graph with random (non-uniform) symmetric doubly stochastic
weights, so a received buffer paired with the wrong neighbour or weight is caught.
Prints "ok" on rank 0; any mismatch raises (non-zero exit).
"""

import numpy as np
import torch
from mpi4py import MPI

from compoptim.comm import run_local
from compoptim.comm.mpi import MPICommunicator
from compoptim.compress import Identity
from compoptim.topology import Topology


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


def main() -> None:
    world = MPI.COMM_WORLD
    n, rank = world.Get_size(), world.Get_rank()
    topology = Topology("random", (random_mixing_matrix(n, seed=n),))
    xs = torch.randn(n, 1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    compressor = Identity(torch.float64)

    def mix(comm):
        out = torch.empty(xs.shape[1], dtype=torch.float64)
        x = xs[comm.rank].clone()
        for step in range(3):  # three rounds: buffers are reused across steps
            comm.neighbor_mix(compressor.encode(x), compressor, out, step=step)
            x.copy_(out)
        total = comm.allreduce_(x.clone(), "sum")
        return x, total, comm.bytes_sent

    mine, total, sent = mix(MPICommunicator(world, topology))
    expected = torch.linalg.matrix_power(torch.tensor(topology.matrix()), 3) @ xs
    torch.testing.assert_close(mine, expected[rank], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(total, expected.sum(dim=0), rtol=1e-12, atol=1e-12)
    assert sent == 3 * len(topology.neighbors(rank)) * 1000 * 8, sent
    local = run_local(topology, mix)[rank]
    assert torch.equal(mine, local[0]) and torch.equal(total, local[1]), "MPI and local backends differ"
    world.Barrier()
    if rank == 0:
        print("ok", flush=True)


if __name__ == "__main__":
    main()
