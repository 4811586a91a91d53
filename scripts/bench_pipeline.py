"""When pipelining pays: S-stage pipelines against data-parallel training on the same N ranks.

    python scripts/bench_pipeline.py            # N = 2 ranks: char_gpt (8 layers) and LeNet-5
    python scripts/bench_pipeline.py --smoke    # tiny models, 2 timed steps (CI)

The script starts itself under ``mpirun -np 2`` (this machine has 2 cores: one rank per
core). Every rank builds its node exactly as ``compoptim-run`` does (``Trainer`` over an
``MPICommunicator``) and times blocks of ``train_step`` on the run's own batches. Both
layouts process the same samples per step: data-parallel gives each of the 2 nodes half of
the global batch (D-PSGD, exact gossip of the whole model over the ring of 2); the
pipeline is one replica of 2 stages that runs the whole global batch in M microbatches
(GPipe). Columns, all from one run:

- ``step s``: wall time of one step (the slower rank), ``vs data``: the pipeline's ratio;
- ``bubble`` (measured): the stages' time in the schedule not spent computing, over their
  time in the schedule (mean of the stages), and ``theory`` = (S - 1) / (M + S - 1), GPipe's
  idle share for equal stages and free transfers;
- ``bytes/step``: what one rank sends per step: the gossip (data) or the activations and
  their gradients (pipeline);
- ``params/rank``: the parameters (and so optimizer state) each rank holds;
- ``on 1 Gb/s``, ``on 100 Mb/s WAN``: the step time projected onto the links of
  ``network=ethernet_1g`` and ``network=wan_100m`` (each message's latency plus bytes over
  bandwidth, on top of the measured step, no overlap), since on one machine messages move
  at memory speed. A data-parallel step is one message to the one neighbour, a pipeline
  step one per microbatch each way. These columns are a model; the others are measured.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GLOBAL_BATCH = 32


def models(smoke: bool, text: Path) -> dict[str, list[str]]:
    gpt = ["model=char_gpt", "dataset=shakespeare", f"dataset.path={text}", "dataset.context=64", "model.width=128",
           f"model.layers={2 if smoke else 8}", "model.heads=4"]
    return {"char_gpt" if not smoke else "char_gpt (2 layers)": gpt, "lenet5": ["model=lenet5"]}


def corpus(folder: Path) -> Path:
    """Real text, offline: this repository's own documentation (the timings do not depend on it)."""
    path = folder / "corpus.txt"
    parts = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    path.write_text("\n".join(p.read_text() for p in parts if p.exists()))
    return path


def measure(overrides: list[str], steps: int, run_dir: Path) -> dict[str, float]:
    """On every rank: build the node as compoptim-run does and time ``steps`` steps after a warm-up."""
    import torch
    from bench_setup import compose_config, endless
    from mpi4py import MPI

    from compoptim.comm.mpi import MPICommunicator
    from compoptim.topology import build_topology
    from compoptim.train import Trainer

    world = MPI.COMM_WORLD
    cfg = compose_config(overrides)
    comm = MPICommunicator(world, build_topology({"name": "ring"}, world.Get_size()))
    trainer = Trainer(cfg, comm, run_dir, torch.device("cpu"), log=lambda _m: None)
    batches = endless(trainer.loader)
    for _ in range(2):  # warm-up: the engine's shape inference, the buffers' first allocation
        trainer.train_step(*next(batches))
    k = comm.counters
    before = (k.bytes_sent + k.activation_bytes_sent, k.bubble_time_s, k.pipeline_time_s)
    world.Barrier()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(*next(batches))
    elapsed = world.allreduce(time.perf_counter() - start, op=MPI.MAX)
    sent = k.bytes_sent + k.activation_bytes_sent - before[0]
    bubble, schedule = k.bubble_time_s - before[1], k.pipeline_time_s - before[2]
    return {"step_s": elapsed / steps,
            "bytes": world.allreduce(sent, op=MPI.MAX) / steps,
            "bubble": world.allreduce(bubble / schedule if schedule else 0.0, op=MPI.SUM) / world.Get_size(),
            "params": world.allreduce(trainer.flat.numel, op=MPI.MAX)}


LINKS = ("ethernet_1g", "wan_100m")


def projected(step_s: float, nbytes: float, messages: int) -> list[float]:
    """The step on each of ``LINKS``: the measured step plus each message's latency and the
    bytes over the bandwidth, as if no transfer overlapped any compute (an upper bound)."""
    from compoptim.comm.network import NETWORKS

    links = [NETWORKS.build({"name": name}) for name in LINKS]
    return [step_s + messages * link.latency_s + nbytes / link.bytes_per_s for link in links]


def worker(smoke: bool, steps: int, microbatches: list[int]) -> None:
    from mpi4py import MPI

    world = MPI.COMM_WORLD
    n = world.Get_size()
    folder = Path(world.bcast(tempfile.mkdtemp(prefix="bench_pipeline_") if world.Get_rank() == 0 else None))
    text = corpus(folder) if world.Get_rank() == 0 else folder / "corpus.txt"
    world.Barrier()
    rows = []
    for name, model in models(smoke, text).items():
        common = [*model, "trainer.epochs=1", "trainer.threads=1", "optimizer=dsgd", "trainer.save_model=false"]
        data = measure([*common, f"trainer.batch_size={GLOBAL_BATCH // n}"], steps, folder / f"{len(rows)}")
        rows.append((name, "data", "-", data, None, projected(data["step_s"], data["bytes"], 1)))
        for m in microbatches:
            pipe = measure([*common, f"trainer.batch_size={GLOBAL_BATCH}", "parallel=pipeline", f"parallel.stages={n}",
                            f"parallel.microbatches={m}"], steps, folder / f"{len(rows)}")
            theory = (n - 1) / (m + n - 1)
            proj = projected(pipe["step_s"], pipe["bytes"], 2 * m)
            rows.append((name, f"pipeline S={n}", str(m), pipe, theory, proj))
        if world.Get_rank() == 0:
            print(f"  measured {name}", file=sys.stderr, flush=True)
    if world.Get_rank() != 0:
        return
    print(f"N = {n} ranks, global batch {GLOBAL_BATCH} samples per step, {steps} timed steps, "
          f"{os.cpu_count()} cores\n")
    print("| model | layout | M | step s | vs data | bubble | theory | bytes/step | params/rank | on 1 Gb/s "
          "| vs data | on 100 Mb/s WAN | vs data |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    base = {}
    for name, layout, m, r, theory, proj in rows:
        if layout == "data":
            base[name] = (r["step_s"], proj)
        ref, ref_proj = base[name]
        print(f"| {name} | {layout} | {m} | {r['step_s']:.4f} | {r['step_s'] / ref:.2f} | "
              f"{'-' if theory is None else format(r['bubble'], '.3f')} | "
              f"{'-' if theory is None else f'{theory:.3f}'} | {r['bytes'] / 1e6:.3f} MB | {int(r['params']):,} | "
              + "".join(f"{p:.4f} | {p / q:.2f} | " for p, q in zip(proj, ref_proj)).rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny models, 2 timed steps (CI)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per layout (default 12; smoke 2)")
    parser.add_argument("--microbatches", type=int, nargs="+", default=None, help="M values (default 1 2 4 8)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    steps = args.steps or (2 if args.smoke else 12)
    microbatches = args.microbatches or ([1, 4] if args.smoke else [1, 2, 4, 8])
    if args.worker:
        worker(args.smoke, steps, microbatches)
        return
    mpirun = Path(sys.executable).with_name("mpirun")
    command = [str(mpirun if mpirun.exists() else "mpirun"), "-np", "2", sys.executable, str(Path(__file__).resolve()),
               "--worker", "--steps", str(steps), "--microbatches", *map(str, microbatches),
               *(["--smoke"] if args.smoke else [])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    sys.exit(subprocess.run(command, env=env, check=False).returncode)


if __name__ == "__main__":
    main()
