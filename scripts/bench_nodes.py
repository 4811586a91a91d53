"""How the in-process backend scales in the node count: 4 to 1024 simulated nodes on one machine.

    python scripts/bench_nodes.py                 # n = 4 16 32 64 256 1024, ring, dsgd and choco_sgd + top-1%
    python scripts/bench_nodes.py --smoke         # n = 4 and 16, a few steps (CI)

For each n and variant, one process builds the n nodes exactly as ``compoptim-run
backend=local backend.nodes=n`` does (``build_local_job``: the memory check included) and
times blocks of training steps of the whole network (``run_nodes`` over its worker
threads). Every node-step does the same work at every n: a batch of ``--batch`` samples,
each node's first ones repeated where its shard is smaller (at n = 1024 a digits shard
holds one or two samples), so the cost per node-step measures the backend's machinery and
not a batch that shrinks with n. Columns: the build time, the wall time of one network
step, node-steps per second, microseconds per node-step, that cost relative to the
smallest n of the same variant (the goal: within 1.5 at n = 1024), one evaluation of all
nodes (the averaged model, the local models, the objective: every reduction), and the
process's resident memory. All rows come from one run on this machine. The script uses
only ``build_local_job`` and ``run_nodes``, so ``PYTHONPATH=<an older checkout>`` times
an older backend the same way.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from bench_setup import block_time, compose_config

from compoptim.cli.local_run import build_local_job
from compoptim.comm import run_nodes
from compoptim.registry import to_plain

VARIANTS = ["optimizer=dsgd", "optimizer=choco_sgd compressor=topk compressor.ratio=0.01"]


def resident_gib() -> float:
    """This process's resident memory (read here, so the script also times older checkouts)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30


def fixed_batches(loader, batch: int):
    """The same ``batch`` samples of this node's shard at every step (cycled through a small shard)."""
    index = torch.arange(batch) % len(loader.y)
    xb, yb = loader.x[index], loader.y[index]
    while True:
        yield xb, yb



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, nargs="+", default=[4, 16, 32, 64, 256, 1024])
    parser.add_argument("--variants", nargs="+", default=VARIANTS, help="each a space-separated list of overrides")
    # a small lr: every node-step repeats the same batch, which a large one would drive to overflow
    parser.add_argument("--common", nargs="*", default=["model=lenet5", "dataset=digits", "topology=ring",
                                                         "optimizer.lr=0.02"])
    parser.add_argument("--batch", type=int, default=8, help="samples per node-step, the same at every n")
    parser.add_argument("--node-steps", type=int, default=4096, help="node-steps per timed block (at least 2 steps)")
    parser.add_argument("--repeats", type=int, default=3, help="timed blocks; the median is reported")
    parser.add_argument("--smoke", action="store_true", help="n = 4 and 16, small blocks: that the script runs")
    args = parser.parse_args()
    if args.smoke:
        args.nodes, args.node_steps, args.repeats = [4, 16], 64, 1

    print(f"{torch.get_num_threads()} torch threads at start; batch {args.batch} per node-step; "
          f"{' '.join(args.common)}")
    print("| nodes | variant | build s | network step ms | node-steps/s | µs per node-step | "
          "cost vs first n | one evaluation s | resident GiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    first: dict[str, float] = {}
    for n in args.nodes:
        for variant in args.variants:
            cfg = to_plain(compose_config([*args.common, *variant.split(), "backend=local", f"backend.nodes={n}"]))
            start = time.perf_counter()
            job = build_local_job(cfg, Path(tempfile.mkdtemp(prefix="bench_nodes")))
            build = time.perf_counter() - start
            sources = [fixed_batches(t.loader, args.batch) for t in job.trainers]
            steps = max(2, args.node_steps // n)
            block_time(job.trainers, sources, max(1, steps // 4))  # warm-up: first-step buffers, caches
            per_step = statistics.median(block_time(job.trainers, sources, steps) for _ in range(args.repeats))
            per_node_step = per_step / n
            first.setdefault(variant, per_node_step)
            start = time.perf_counter()  # what every evaluation of a run costs: x̄, scores, the reductions
            run_nodes(job.comms, [t.evaluator.evaluate for t in job.trainers])
            evaluation = time.perf_counter() - start
            print(f"| {n} | {variant} | {build:.1f} | {1e3 * per_step:.2f} | {n / per_step:,.0f} | "
                  f"{1e6 * per_node_step:,.0f} | {per_node_step / first[variant]:.2f} | {evaluation:.1f} | "
                  f"{resident_gib():.2f} |", flush=True)
            del job, sources
            gc.collect()


if __name__ == "__main__":
    main()
