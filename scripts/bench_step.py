"""Training step time with communication vs without, measured side by side in one MPI job.

    python scripts/bench_step.py          # -np 2 and 4: dsgd, dsgd + overlap, choco_sgd + top-1% vs no comm
    python scripts/bench_step.py --nps 4 --variants topology=ring topology=exponential --steps 50

Every rank builds one Trainer per variant (each over its own duplicate of COMM_WORLD) plus
the baseline ``topology=none`` (no communication at all), all with the same model, data and
batch size (default: LeNet-5 on digits, batch 32 per node). Blocks of ``steps`` training
steps (forward, backward, optimizer step with its gossip) then alternate between the
variants, ``repeats`` times; a block's time is the slowest rank's, the figure is the median
per step. The ratio variant / baseline is the communication overhead; the time split
(compute / compress / comm / wait) comes from the communicator's counters.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from mpi_jobs import markdown_table, run_worker

BASELINE = "topology=none"


def worker(variants: list[str], common: list[str], steps: int, repeats: int) -> None:
    import torch
    from hydra import compose, initialize_config_module
    from mpi4py import MPI
    from omegaconf import OmegaConf

    from compoptim.cli.world import default_threads, node_local
    from compoptim.comm.mpi import MPICommunicator
    from compoptim.config import register_schemas
    from compoptim.topology import build_topology
    from compoptim.train import Trainer

    world = MPI.COMM_WORLD
    local = node_local(world)
    torch.set_num_threads(default_threads(local.Get_size()))
    register_schemas()
    OmegaConf.register_new_resolver("run_stamp", lambda: "bench", replace=True)
    trainers, batches = {}, {}
    with initialize_config_module("compoptim.conf", version_base="1.3"):
        for variant in [*variants, BASELINE]:
            cfg = compose("config", overrides=[*common, *variant.split()])
            comm = MPICommunicator(world.Dup(), build_topology(cfg.topology, world.Get_size()))
            trainers[variant] = Trainer(cfg, comm, Path(tempfile.mkdtemp(prefix="bench_step")),
                                        torch.device("cpu"), log=lambda _m: None)
            batches[variant] = _endless(trainers[variant].loader)

    def block(variant: str) -> float:
        trainer, source = trainers[variant], batches[variant]
        world.Barrier()
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_step(*next(source))
        return world.allreduce(time.perf_counter() - start, op=MPI.MAX) / steps

    for variant in trainers:  # warm-up: allocations, first exchanges
        block(variant)
    for trainer in trainers.values():
        c = trainer.comm
        c.compress_time_s = c.comm_time_s = c.wait_time_s = 0.0
    times: dict[str, list[float]] = {v: [] for v in trainers}
    for _ in range(repeats):
        for variant in trainers:
            times[variant].append(block(variant))
    total_steps = steps * repeats
    rows = []
    for variant, trainer in trainers.items():
        c = trainer.comm
        split = torch.tensor([c.compress_time_s, c.comm_time_s, c.wait_time_s], dtype=torch.float64)
        c.allreduce_(split, "mean")
        rows.append({"n": world.Get_size(), "variant": variant, "step_ms": 1e3 * statistics.median(times[variant]),
                     **{f"{k}_ms": 1e3 * v / total_steps for k, v in zip(("compress", "comm", "wait"), split.tolist())},
                     "threads": torch.get_num_threads()})
    if world.Get_rank() == 0:
        print("RESULT " + json.dumps(rows), flush=True)


def _endless(loader):
    while True:
        yield from loader.epoch()


def table(rows: list[dict]) -> str:
    head = ("| ranks | variant | step ms | / no communication | compress ms | comm ms | wait ms | threads/rank |")
    lines = []
    base = {r["n"]: r["step_ms"] for r in rows if r["variant"] == BASELINE}
    for r in rows:
        lines.append(f"| {r['n']} | {r['variant']} | {r['step_ms']:.3f} | {r['step_ms'] / base[r['n']]:.3f} "
                     f"| {r['compress_ms']:.3f} | {r['comm_ms']:.3f} | {r['wait_ms']:.3f} | {r['threads']} |")
    return markdown_table(head, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nps", type=int, nargs="+", default=[2, 4], help="ranks per job (default: 2 4)")
    parser.add_argument("--variants", nargs="+",
                        default=["topology=ring", "topology=ring optimizer.overlap=true",
                                 "optimizer=choco_sgd compressor=topk"],
                        help="configs to compare with topology=none, each a space-separated list of overrides")
    parser.add_argument("--common", nargs="*", default=["model=lenet5", "trainer.batch_size=32"],
                        help="overrides shared by every variant")
    parser.add_argument("--steps", type=int, default=40, help="training steps per timed block")
    parser.add_argument("--repeats", type=int, default=7, help="timed blocks per variant; the median is reported")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.variants, args.common, args.steps, args.repeats)
        return
    rows = [row for np_ in args.nps for row in run_worker(__file__, np_, [
        "--steps", str(args.steps), "--repeats", str(args.repeats), "--variants", *args.variants,
        "--common", *args.common])]
    print(table(rows))


if __name__ == "__main__":
    main()
