"""The in-process backend (``backend=local``) at 1 to 32 simulated nodes: how fast a whole
network of nodes steps on one machine, with gossip and without.

    python scripts/bench_local.py                   # n = 1 2 4 8 16 32, LeNet-5, batch 32, ring vs none
    python scripts/bench_local.py --nodes 8 32 --variants topology=ring "optimizer=choco_sgd compressor=topk"

For each n, one process builds n Trainers over one in-process hub (exactly as
``compoptim-run backend=local backend.nodes=n`` does, with its thread setting) and times
blocks of ``steps`` training steps of all n nodes in parallel threads, alternating the
variants with the baseline ``topology=none`` (no exchange); the figure is the median block.
Columns: wall time for one step of the whole network; node-steps per second; the ratio to
the baseline at the same n (what the hub's exchanges cost); and the parallel efficiency
n·t1 / (t_n · min(n, cores)) against one node stepping alone (t1, measured in the same run).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch
from bench_setup import block_time, compose_config, endless

from compoptim.comm import local_network
from compoptim.cores import default_threads, usable_cores
from compoptim.topology import build_topology
from compoptim.train import Trainer

BASELINE = "topology=none"


def build(n: int, overrides: list[str]) -> list[Trainer]:
    cfg = compose_config([*overrides, "backend=local", f"backend.nodes={n}"])
    run_dir = Path(tempfile.mkdtemp(prefix="bench_local"))
    return [Trainer(cfg, comm, run_dir, torch.device("cpu"), log=lambda _m: None)
            for comm in local_network(build_topology(cfg.topology, n))]



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--variants", nargs="+", default=["topology=ring"],
                        help="configs compared with topology=none, each a space-separated list of overrides")
    parser.add_argument("--common", nargs="*", default=["model=lenet5", "trainer.batch_size=32", "dataset=synthetic",
                                                         "dataset.samples=40000", "dataset.image_shape=[1,28,28]"],
                        help="overrides shared by every variant")
    parser.add_argument("--steps", type=int, default=20, help="network steps per timed block")
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks per variant; the median is reported")
    args = parser.parse_args()
    cores = usable_cores()[0]
    torch.set_num_threads(1)  # t1: one node alone on one core, the unit of the efficiency
    single = build(1, [*args.common, BASELINE])
    source = [endless(single[0].loader)]
    block_time(single, source, 3)
    t1 = statistics.median(block_time(single, source, args.steps) for _ in range(args.repeats))
    print(f"{cores} cores; one node alone, one thread: {1e3 * t1:.2f} ms per step")
    print("| nodes | variant | network step ms | node-steps/s | / no exchange | parallel efficiency |")
    print("|---|---|---|---|---|---|")
    for n in args.nodes:
        torch.set_num_threads(default_threads(n))
        variants = [*args.variants, BASELINE]
        trainers = {v: build(n, [*args.common, *v.split()]) for v in variants}
        sources = {v: [endless(t.loader) for t in ts] for v, ts in trainers.items()}
        times: dict[str, list[float]] = {v: [] for v in variants}
        for v in variants:  # warm-up
            block_time(trainers[v], sources[v], 3)
        for _ in range(args.repeats):
            for v in variants:
                times[v].append(block_time(trainers[v], sources[v], args.steps))
        med = {v: statistics.median(ts) for v, ts in times.items()}
        for v in variants:
            print(f"| {n} | {v} | {1e3 * med[v]:.2f} | {n / med[v]:.0f} | {med[v] / med[BASELINE]:.3f} "
                  f"| {n * t1 / (med[v] * min(n, cores)):.2f} |", flush=True)


if __name__ == "__main__":
    main()
