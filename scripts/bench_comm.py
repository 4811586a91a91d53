"""One gossip round on a ring: compoptim vs a naive pickled exchange vs MPI Allreduce.

    python scripts/bench_comm.py                 # runs mpirun -np 4 and -np 8 itself, prints one table
    python scripts/bench_comm.py --nps 2 4 8 --repeats 7

For a LeNet-5-sized (61,706 floats, its 10 tensors) and a ResNet-20-sized (~270k floats,
its 65 tensors) model, every rank times, in the same job, interleaved:
- compoptim: ``MPICommunicator.neighbor_mix`` of the flat fp32 buffer (identity compressor):
  raw bytes, nonblocking sends/receives to the two ring neighbours, no barrier;
- naive: the design compoptim replaces: each parameter tensor pickled and sent separately
  (``comm.isend``/``comm.recv`` of Python objects), a barrier between the two phases (send
  right / send left) of every tensor, then the weighted sum per tensor;
- allreduce: ``Allreduce`` of the same flat buffer (what a centralized baseline costs).
A block is ``rounds`` rounds; its time is the slowest rank's; the figure is the median over
``repeats`` blocks, per round. Ratios are measured in the same job, so they compare like
with like even on an oversubscribed machine.
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import time

import torch
from mpi_jobs import markdown_table, run_worker

LENET5 = "lenet5"
RESNET20 = "resnet20"


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


def worker(rounds: int, repeats: int) -> None:
    from mpi4py import MPI

    torch.set_num_threads(1)
    world = MPI.COMM_WORLD
    results = [measure(world, model, rounds, repeats) for model in (LENET5, RESNET20)]
    if world.Get_rank() == 0:
        print("RESULT " + json.dumps(results), flush=True)


def measure(world, model: str, rounds: int, repeats: int) -> dict:
    from mpi4py import MPI

    from compoptim.comm.mpi import MPICommunicator
    from compoptim.compress import Identity
    from compoptim.topology import ring

    rank, n = world.Get_rank(), world.Get_size()
    left, right = (rank - 1) % n, (rank + 1) % n
    tensors = [torch.randn(s) for s in parameter_shapes(model)]
    flat = torch.cat([t.reshape(-1) for t in tensors])
    out = torch.empty_like(flat)
    comm = MPICommunicator(world.Dup(), ring(n))
    compressor = Identity()
    self_w, nbr_w = comm.topology.weights(rank)
    buffer = flat.clone().numpy()

    def compoptim_round() -> None:
        comm.neighbor_mix(compressor.encode(flat), compressor, out)

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

    def allreduce_round() -> None:
        world.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)

    methods = {"compoptim": (compoptim_round, rounds), "naive": (naive_round, max(2, rounds // 10)),
               "allreduce": (allreduce_round, rounds)}
    times: dict[str, list[float]] = {m: [] for m in methods}
    for fn, _ in methods.values():  # warm-up: buffers, connections
        fn()
        fn()
    for _ in range(repeats):
        for name, (fn, k) in methods.items():
            world.Barrier()
            start = time.perf_counter()
            for _ in range(k):
                fn()
            times[name].append(world.allreduce(time.perf_counter() - start, op=MPI.MAX) / k)
    pickled = sum(len(pickle.dumps(t)) for t in tensors)
    return {
        "n": n, "model": model, "floats": flat.numel(), "tensors": len(tensors),
        **{f"{m}_ms": 1e3 * statistics.median(v) for m, v in times.items()},
        "compoptim_bytes": 2 * flat.numel() * 4, "naive_bytes": 2 * pickled,
    }


def table(rows: list[dict]) -> str:
    head = ("| ranks | model size | tensors | compoptim ms | naive ms | allreduce ms | naive / compoptim "
            "| allreduce / compoptim | bytes/round compoptim | bytes/round naive |")
    lines = []
    for r in rows:
        lines.append(
            f"| {r['n']} | {r['model']} ({r['floats']:,} floats) | {r['tensors']} | {r['compoptim_ms']:.3f} "
            f"| {r['naive_ms']:.2f} | {r['allreduce_ms']:.3f} | {r['naive_ms'] / r['compoptim_ms']:.1f}x "
            f"| {r['allreduce_ms'] / r['compoptim_ms']:.2f}x | {r['compoptim_bytes']:,} | {r['naive_bytes']:,} |")
    return markdown_table(head, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nps", type=int, nargs="+", default=[4, 8], help="ranks per job (default: 4 8)")
    parser.add_argument("--rounds", type=int, default=100, help="gossip rounds per timed block (naive: a tenth)")
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks per method; the median is reported")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.rounds, args.repeats)
        return
    rows = [row for np_ in args.nps
            for row in run_worker(__file__, np_, ["--rounds", str(args.rounds), "--repeats", str(args.repeats)])]
    print(table(rows))


if __name__ == "__main__":
    main()
