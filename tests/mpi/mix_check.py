"""Run under mpirun: MPICommunicator against W @ X and against the in-process backend.

Uses a random connected graph with random (non-uniform) symmetric doubly stochastic
weights, so a received buffer paired with the wrong neighbour or weight is caught, and
the named irregular and time-varying topologies (star, torus, one-peer exponential) over
a whole period, so changing neighbour sets are covered; directed graphs (random column-
stochastic push weights, where in- and out-neighbours differ); rounds where some nodes send
nothing (an empty message); per-edge messages; and the persistent requests of broadcast
rounds (a send buffer that moves, two exchanges in flight, more buffers than are kept, a
timeout set, a compressed payload). Prints "ok" on rank 0; any mismatch raises (non-zero exit).
"""

import numpy as np
import torch
from mpi4py import MPI

from compoptim.comm import mpi as mpi_backend
from compoptim.comm import run_local
from compoptim.comm.mpi import MPICommunicator
from compoptim.compress import CompressContext, Identity, TopK
from compoptim.errors import UserError
from compoptim.topology import Topology, one_peer_exponential, ring, star, torus
from compoptim.topology.builders import one_peer_directed_exponential


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


def random_push_matrix(n: int, seed: int) -> np.ndarray:
    """A strongly connected digraph (a directed ring plus random links) with random column-stochastic weights."""
    rng = np.random.default_rng(seed)
    links = np.zeros((n, n))  # links[dst, src]
    for i in range(n):
        links[(i + 1) % n, i] = 1.0
    for _ in range(n):
        i, j = rng.integers(0, n, 2)
        links[j, i] = 1.0 if i != j else 0.0
    w = links * rng.uniform(0.2, 1.0, (n, n)) + np.diag(rng.uniform(0.2, 1.0, n))
    return w / w.sum(axis=0, keepdims=True)


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
    degrees = sum(len(topology.out_neighbors(rank, step)) for step in range(rounds))
    assert sent == degrees * 1000 * 8, (topology.name, sent)
    local = run_local(topology, mix)[rank]
    assert torch.equal(mine, local[0]) and torch.equal(total, local[1]), f"{topology.name}: MPI and local differ"


def check_skips_and_edges(world: MPI.Comm, topology: Topology) -> None:
    """Rounds where node r sends only when (r + step) % 3 != 0, accumulated into s; then per-edge
    messages (each neighbour gets its own vector): MPI equals the definition and the local backend."""
    n, rank = world.Get_size(), world.Get_rank()
    xs = torch.randn(n, 300, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    compressor = Identity(CompressContext(dtype=torch.float64))

    def run(comm):
        s = torch.zeros(300, dtype=torch.float64)
        for step in range(4):
            sends = (comm.rank + step) % 3 != 0
            payload = compressor.encode(xs[comm.rank] * (step + 1)) if sends else None
            comm.finish_mix(comm.start_mix(payload, step, nbytes=300 * 8, skippable=True), compressor, s,
                            accumulate=True)
        sent_mix = comm.counters.bytes_sent
        got = []
        if not topology.directed:
            nbrs = comm.topology.neighbors(comm.rank, 0)
            got = comm.exchange_edges([compressor.encode(xs[comm.rank] * (10 * comm.rank + j)).clone()
                                       for j in nbrs], 0)
        return s, sent_mix, [compressor.decode(g, 300).clone() for g in got]

    s, sent, got = run(MPICommunicator(world, topology))
    expected = torch.zeros(300, dtype=torch.float64)
    expected_sent = 0
    for step in range(4):
        w = topology.matrix(step)
        for j in range(n):
            if w[rank, j] > 0 and (j + step) % 3 != 0:
                expected += w[rank, j] * xs[j] * (step + 1)
        if (rank + step) % 3 != 0:
            expected_sent += len(topology.out_neighbors(rank, step)) * 300 * 8
    torch.testing.assert_close(s, expected, rtol=1e-12, atol=1e-12)
    assert sent == expected_sent, (topology.name, sent, expected_sent)
    for j, g in zip(topology.neighbors(rank, 0), got):
        torch.testing.assert_close(g, xs[j] * (10 * j + rank), rtol=0, atol=0)
    local = run_local(topology, run)[rank]
    assert torch.equal(s, local[0]) and all(torch.equal(a, b) for a, b in zip(got, local[2])), topology.name


def check_channels(world: MPI.Comm, topology: Topology) -> None:
    """Broadcast rounds run on persistent requests keyed by the send buffer: a payload in a
    new buffer every round, one that alternates between two, two exchanges of one size in
    flight at once (overlap), more distinct buffers than are kept (the idle ones are freed),
    a timeout set (the polling wait), and top-k payloads: each equals the definition, and
    the in-process backend bit for bit."""
    n = world.Get_size()
    xs = torch.randn(n, 257, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ctx = CompressContext(dtype=torch.float64)
    identity = Identity(ctx)
    kept = mpi_backend._KEPT_CHANNELS

    def run(comm, overlap=False):
        x, out, y = xs[comm.rank].clone(), torch.empty(257, dtype=torch.float64), xs[comm.rank] * 2
        spare = [x.clone(), x.clone()]
        for step in range(kept + 6):  # a fresh send buffer each round: a new channel, past the kept ones
            payload = x.clone() if step % 3 else spare[step % 2].copy_(x)
            comm.neighbor_mix(identity.encode(payload), identity, out, step=step)
            x.copy_(out)
        ox = oy = None
        if overlap:  # two in flight, slots 0 and 1 (the in-process backend holds one at a time)
            first = comm.start_mix(identity.encode(x), 0)
            second = comm.start_mix(identity.encode(y), 1)
            ox = comm.finish_mix(first, identity, torch.empty_like(x))
            oy = comm.finish_mix(second, identity, y.clone())
        topk = TopK(ctx, ratio=0.1)
        s = torch.zeros(257, dtype=torch.float64)
        for step in range(3):
            comm.finish_mix(comm.start_mix(topk.encode(xs[comm.rank] * (step + 1)), step), topk, s, accumulate=True)
        return x, s, ox, oy

    rank = world.Get_rank()
    x = xs
    for step in range(kept + 6):
        x = torch.tensor(topology.matrix(step)) @ x
    ox, oy = torch.tensor(topology.matrix(0)) @ x, torch.tensor(topology.matrix(1)) @ (xs * 2)
    mpi = MPICommunicator(world, topology, timeout_s=30.0)
    mine = run(mpi, overlap=True)
    assert len(mpi._channels) <= kept, len(mpi._channels)
    if topology.period == 1 and not topology.directed:  # shared-memory rounds: the same bits
        small = MPICommunicator(world, topology, shared_memory=True)
        small.neighbor_mix(identity.encode(xs[rank].clone()), identity, torch.empty(257, dtype=torch.float64))
        assert not small._shared, "a payload under SHARED_MIN_BYTES went through a window"
        shared = MPICommunicator(world, topology, timeout_s=30.0, shared_memory=True)
        threshold, mpi_backend.SHARED_MIN_BYTES = mpi_backend.SHARED_MIN_BYTES, 0  # these small ones too
        via_windows = run(shared, overlap=True)
        mpi_backend.SHARED_MIN_BYTES = threshold
        assert all(torch.equal(a, b) for a, b in zip(mine, via_windows)), f"{topology.name}: shared memory differs"
        assert sorted(shared._shared) == sorted([(257 * 8, 0), (257 * 8, 1), (topk_nbytes(ctx), 0)]), shared._shared
        assert shared.counters.bytes_sent == mpi.counters.bytes_sent
        shared.close()
    for got, want in zip([mine[0], mine[2], mine[3]], [x[rank], ox[rank], oy[rank]]):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    local = run_local(topology, run)[rank]
    assert torch.equal(mine[0], local[0]) and torch.equal(mine[1], local[1]), f"{topology.name}: channels differ"


def topk_nbytes(ctx) -> int:
    return TopK(ctx, ratio=0.1).payload_nbytes(257)


def check_shared_memory_refusals(world: MPI.Comm) -> None:
    """A time-varying or directed topology cannot take shared-memory rounds: one line, every rank."""
    n = world.Get_size()
    for topology in (one_peer_exponential(n), one_peer_directed_exponential(n)):
        if topology.period == 1 and not topology.directed:
            continue
        try:
            MPICommunicator(world, topology, shared_memory=True)
        except UserError as exc:
            assert str(exc).startswith("backend.shared_memory=true needs a static undirected topology"), exc
            assert "set backend.shared_memory=false" in str(exc), exc
        else:
            raise AssertionError(f"{topology.name}: shared memory accepted")


def main() -> None:
    world = MPI.COMM_WORLD
    n = world.Get_size()
    directed = [Topology("random_directed", (random_push_matrix(n, seed=n),), directed=True),
                one_peer_directed_exponential(n)]
    for topology in (Topology("random", (random_mixing_matrix(n, seed=n),)), star(n), torus(n),
                     one_peer_exponential(n), *directed):
        check(world, topology)
    for topology in (Topology("random", (random_mixing_matrix(n, seed=n),)), one_peer_exponential(n), *directed):
        check_skips_and_edges(world, topology)
    for topology in (Topology("random", (random_mixing_matrix(n, seed=n),)), one_peer_exponential(n), directed[0]):
        check_channels(world, topology)
    check_channels(world, ring(n))
    check_shared_memory_refusals(world)
    world.Barrier()
    if world.Get_rank() == 0:
        print("ok", flush=True)


if __name__ == "__main__":
    main()
