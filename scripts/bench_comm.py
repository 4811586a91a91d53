"""One gossip round against the transport's floor, torch.distributed (gloo), MPI's
neighbourhood collective, a naive pickled exchange and Allreduce, all in the same job.

    python scripts/bench_comm.py                      # -np 2 and 4, 64 / 61,706 / 269,722 floats
    python scripts/bench_comm.py --nps 2 4 8 --repeats 9 --naive
    python scripts/bench_comm.py --smoke              # -np 2, small blocks: that the script runs (CI)

For each message size (64 floats; LeNet-5, 61,706 floats; ResNet-20, 269,722 floats) every
rank times, interleaved, one exact (uncompressed) ring gossip round of a flat fp32 buffer:
- floor: raw mpi4py ``Irecv``/``Isend`` of the contiguous buffer to this round's
  neighbours and one ``Waitall``, into receive buffers allocated beforehand; no decoding,
  no mixing: what the MPI transport itself costs from Python;
- floor + mix: the floor plus the weighted sum written in place into the sent buffer, by
  hand (torch ops on numpy views): the least a complete round can do over point-to-point;
- compoptim: ``ExactGossip`` (identity compressor), the whole round as training runs it:
  post, wait, the weighted sum written in place into the buffer, the byte counters;
- compoptim, shared memory: the same with ``backend.shared_memory=true`` (one copy into
  this rank's slot of an MPI-3 shared window, zero-byte messages, the sum read in place);
- gloo: the same exchange and weighted sum written on ``torch.distributed`` (gloo backend,
  ``isend``/``irecv`` to the neighbours), the usual alternative to MPI from PyTorch;
- neighbor: raw ``Neighbor_allgather`` on a distributed-graph communicator of the same
  graph (MPI's neighbourhood collective), no mixing: whether the library does the exchange
  faster than point-to-point;
- allreduce: ``Allreduce`` of the same buffer (what a centralized baseline costs);
- naive (``--naive``, model sizes only): each parameter tensor pickled and sent
  separately, a barrier between its send-right / send-left phases, the design compoptim
  replaces.
A block is ``rounds`` rounds (ten times as many at 64 floats, where a round is a few
microseconds); its time is the slowest rank's; the figure is the median over ``repeats``
blocks, per round, and every ratio is to the floor measured in the same job.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
from mpi_jobs import default_mpirun, markdown_table, mpirun_flags, run_worker

LENET5 = "lenet5"
RESNET20 = "resnet20"
SIZES = {64: "small", 61_706: LENET5, 269_722: RESNET20}
SMALL = 4096  # below this many floats a block runs ten times as many rounds


def parameter_shapes(model: str) -> list[tuple[int, ...]]:
    """The parameter tensor shapes of the model (what the naive design sends one by one)."""
    if model == LENET5:
        from compoptim.models import build_model

        return [tuple(p.shape) for p in build_model({"name": "lenet5"}, (1, 28, 28), 10).parameters()]
    # ResNet-20 for CIFAR-10 (He et al. 2016): 3x3 stem, 3 stages x 3 basic blocks of two
    # 3x3 convs with BatchNorm (weight, bias), widths 16/32/64, linear head.
    shapes: list[tuple[int, ...]] = [(16, 3, 3, 3), (16,), (16,)]
    c_in = 16
    for width in (16, 32, 64):
        for _ in range(3):
            shapes += [(width, c_in, 3, 3), (width,), (width,), (width, width, 3, 3), (width,), (width,)]
            c_in = width
    return [*shapes, (10, 64), (10,)]


def worker(sizes: list[int], rounds: int, repeats: int, naive: bool) -> None:
    import torch.distributed as dist
    from mpi4py import MPI

    torch.set_num_threads(1)
    world = MPI.COMM_WORLD
    # gloo meets over TCP: rank 0 picks a free port and tells the others.
    port = world.bcast(_free_port() if world.Get_rank() == 0 else None, root=0)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=world.Get_rank(),
                            world_size=world.Get_size())
    results = [measure(world, numel, rounds * (10 if numel < SMALL else 1), repeats, naive) for numel in sizes]
    dist.destroy_process_group()
    if world.Get_rank() == 0:
        print("RESULT " + json.dumps(results), flush=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(world, numel: int, rounds: int, repeats: int, naive: bool) -> dict:
    import torch.distributed as dist
    from mpi4py import MPI

    from compoptim.comm.mpi import MPICommunicator
    from compoptim.compress import Identity
    from compoptim.optim.gossip import ExactGossip
    from compoptim.topology import ring

    rank, n = world.Get_rank(), world.Get_size()
    topology = ring(n)
    self_w, nbr_w = topology.weights(rank)
    neighbors = list(nbr_w)
    torch.manual_seed(rank)
    model = SIZES.get(numel, "vector")
    flat = torch.randn(numel)
    comm = MPICommunicator(world.Dup(), topology)
    gossip = ExactGossip(comm, Identity())

    floor_send = flat.clone().numpy()
    floor_recv = [torch.empty(numel).numpy() for _ in neighbors]

    def floor_round() -> None:
        requests = [world.Irecv(buf, source=j, tag=11) for buf, j in zip(floor_recv, neighbors)]
        requests += [world.Isend(floor_send, dest=j, tag=11) for j in neighbors]
        MPI.Request.Waitall(requests)

    mixed = flat.clone()
    mixed_recv = [torch.from_numpy(buf) for buf in floor_recv]

    def floor_mix_round() -> None:
        wire = mixed.numpy()
        requests = [world.Irecv(buf, source=j, tag=12) for buf, j in zip(floor_recv, neighbors)]
        requests += [world.Isend(wire, dest=j, tag=12) for j in neighbors]
        MPI.Request.Waitall(requests)
        mixed.mul_(self_w)
        for buf, w in zip(mixed_recv, nbr_w.values()):
            mixed.add_(buf, alpha=w)

    def compoptim_round() -> None:
        gossip(flat, 0)

    shared_x = flat.clone()
    try:
        shared_gossip = ExactGossip(MPICommunicator(world.Dup(), topology, shared_memory=True), Identity())
    except TypeError:  # an earlier compoptim (PYTHONPATH=its checkout, for before/after figures): no such setting
        shared_gossip = None

    def shared_round() -> None:
        shared_gossip(shared_x, 0)

    gloo_x = flat.clone()
    gloo_recv = [torch.empty(numel) for _ in neighbors]

    def gloo_round() -> None:
        works = [dist.irecv(buf, src=j) for buf, j in zip(gloo_recv, neighbors)]
        works += [dist.isend(gloo_x, dst=j) for j in neighbors]
        for work in works:
            work.wait()
        gloo_x.mul_(self_w)
        for buf, w in zip(gloo_recv, nbr_w.values()):
            gloo_x.add_(buf, alpha=w)

    graph = world.Create_dist_graph_adjacent(neighbors, neighbors, reorder=False)
    neighbor_recv = torch.empty(len(neighbors), numel).numpy()

    def neighbor_round() -> None:
        graph.Neighbor_allgather(floor_send, neighbor_recv)

    allreduce_buf = flat.clone().numpy()

    def allreduce_round() -> None:
        world.Allreduce(MPI.IN_PLACE, allreduce_buf, op=MPI.SUM)

    methods = {"floor": (floor_round, rounds), "floor_mix": (floor_mix_round, rounds),
               "compoptim": (compoptim_round, rounds), "shared": (shared_round, rounds), "gloo": (gloo_round, rounds),
               "neighbor": (neighbor_round, rounds), "allreduce": (allreduce_round, rounds)}
    if shared_gossip is None:
        del methods["shared"]
    if naive and model in (LENET5, RESNET20):
        methods["naive"] = (_naive_round(world, model, self_w, nbr_w), max(2, rounds // 10))
    times: dict[str, list[float]] = {m: [] for m in methods}
    for fn, _ in methods.values():  # warm-up: buffers, connections
        for _ in range(3):
            fn()
    for _ in range(repeats):
        for name, (fn, k) in methods.items():
            world.Barrier()
            start = time.perf_counter()
            for _ in range(k):
                fn()
            times[name].append(world.allreduce(time.perf_counter() - start, op=MPI.MAX) / k)
    graph.Free()
    library = MPI.Get_library_version().splitlines()[0].strip()[:60]
    return {"n": n, "size": model, "library": library, "floats": numel, "degree": len(neighbors), "rounds": rounds,
            **{f"{m}_ms": 1e3 * statistics.median(v) for m, v in times.items()}}


def _naive_round(world, model: str, self_w: float, nbr_w: dict[int, float]):
    rank, n = world.Get_rank(), world.Get_size()
    left, right = (rank - 1) % n, (rank + 1) % n
    tensors = [torch.randn(s) for s in parameter_shapes(model)]

    def naive_round() -> None:
        for t in tensors:
            got = {}
            for dest, source in ((right, left), (left, right)):
                world.Barrier()
                request = world.isend(t, dest=dest, tag=3)
                got[source] = world.recv(source=source, tag=3)
                request.wait()
            world.Barrier()
            mixed = t * self_w
            for j, w in nbr_w.items():
                mixed += got[j] * w

    return naive_round


def table(rows: list[dict]) -> str:
    naive = any("naive_ms" in r for r in rows)
    head = ("| ranks | message | floor ms | compoptim / floor | compoptim / (floor + mix) | shared memory / floor "
            "| shared memory / compoptim | gloo / floor | neighbor / floor | allreduce / floor | floor + mix ms "
            "| compoptim ms | shared memory ms | gloo ms |" + (" naive / compoptim |" if naive else ""))
    lines = []
    for r in rows:
        floor, ours, shared = r["floor_ms"], r["compoptim_ms"], r.get("shared_ms", float("nan"))
        line = (f"| {r['n']} | {r['size']} ({r['floats']:,} floats) | {floor:.4f} | {ours / floor:.2f}x "
                f"| {ours / r['floor_mix_ms']:.2f}x | {shared / floor:.2f}x | {shared / ours:.2f}x "
                f"| {r['gloo_ms'] / floor:.1f}x | {r['neighbor_ms'] / floor:.2f}x | {r['allreduce_ms'] / floor:.2f}x "
                f"| {r['floor_mix_ms']:.4f} | {ours:.4f} | {shared:.4f} | {r['gloo_ms']:.4f} |")
        if naive:
            line += f" {r['naive_ms'] / ours:.0f}x |" if "naive_ms" in r else " |"
        lines.append(line)
    return markdown_table(head, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nps", type=int, nargs="+", default=[2, 4], help="ranks per job (default: 2 4)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="message sizes in floats")
    parser.add_argument("--rounds", type=int, default=200, help="rounds per timed block (x10 below 4096 floats)")
    parser.add_argument("--repeats", type=int, default=7, help="timed blocks per method; the median is reported")
    parser.add_argument("--naive", action="store_true", help="also time the naive pickled exchange (slow)")
    parser.add_argument("--mpirun", default=None,
                        help="the mpirun to start the jobs with (default: this venv's, else PATH's); Open MPI's "
                             "needs MPI4PY_LIBMPI / MPI4PY_MPIABI=openmpi set for mpi4py")
    parser.add_argument("--smoke", action="store_true", help="-np 2, small blocks: that the script runs (CI)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smoke:
        args.nps, args.rounds, args.repeats = [2], 5, 2
        args.sizes = [s for s in args.sizes if s < 100_000]
    if args.worker:
        worker(args.sizes, args.rounds, args.repeats, args.naive)
        return
    extra = ["--naive"] if args.naive else []
    mpirun = args.mpirun or default_mpirun()
    rows = [row for np_ in args.nps
            for row in run_worker(__file__, np_, ["--rounds", str(args.rounds), "--repeats", str(args.repeats),
                                                 "--sizes", *map(str, args.sizes), *extra],
                                  mpirun_args=mpirun_flags(mpirun), mpirun=mpirun)]
    print(rows[0]["library"])
    print(table(rows))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
