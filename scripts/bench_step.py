"""Where a training step's time goes: gossip vs no communication, overlap, and the optimizer
step vs torch.optim, all measured in one run and printed as one table.

    python scripts/bench_step.py                       # -np 4 (and 2): LeNet-5, batch 32, ring
    python scripts/bench_step.py --nps 4 --common model=resnet20 dataset=synthetic \\
        "dataset.image_shape=[3,32,32]" --steps 10     # the same for ResNet-20

Communication rows: every rank builds one Trainer per variant (each over its own duplicate
of COMM_WORLD) plus its baseline without communication: the same optimizer (local rule
included) with ``topology=none compressor=none optimizer.gossip=exact``, so the gossip is
skipped; all with the same model, data and batch size. Blocks of ``steps`` training steps (forward, backward,
optimizer step with its gossip) alternate between the variants, ``repeats`` times; a
block's time is the slowest rank's, the figure is the median per step. The ratio
variant / baseline is the communication overhead; compress / comm / wait come from the
communicator's counters (ms per step, mean over ranks). The overlap row compares D-PSGD
with and without ``optimizer.overlap`` (x_t sent during the backward pass, on by default).

Optimizer rows (this process, no MPI, one thread): ``optimizer.step()`` of one node with no
communication, for each local rule with a torch.optim counterpart, against that rule's
fastest torch kernel on the same numbers: ``fused=True`` on one flat parameter holding the
whole model (the goal: compoptim <= 1.0x of it), and, for reference, ``foreach=True`` and
``fused=True`` over the model's own parameter tensors; alternating blocks.
Ranks per core above 1 means the job oversubscribes the machine: a waiting rank then
waits for a neighbour the OS has descheduled, which no code change can remove.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from bench_setup import compose_config, endless
from mpi_jobs import default_mpirun, markdown_table, mpirun_flags, run_worker

from compoptim.cores import usable_cores

# What "no communication" means for a variant: the same optimizer and local rule, with no
# neighbours (topology=none, uncompressed exact gossip, which is then skipped).
_NOT_IN_BASELINE = ("topology=", "topology.", "compressor=", "compressor.", "optimizer.gossip=", "optimizer.overlap=")


def baseline_of(variant: str) -> str:
    kept = [o for o in variant.split() if not o.startswith(_NOT_IN_BASELINE)]
    return " ".join([*kept, "topology=none", "compressor=none", "optimizer.gossip=exact"])
OFF = "topology=ring optimizer.overlap=false"
OVERLAP = (OFF, "topology=ring")  # (off, on): dsgd overlaps by default
TARGETS = {"topology=ring": 1.05, "optimizer=choco_sgd compressor=topk": 1.15, "optimizer step": 1.0}
# The optimizer rows: (label, compoptim overrides, the torch.optim counterpart).
RULE_SPECS = [
    ("sgd, momentum 0.9", ["optimizer=sgd", "optimizer.momentum=0.9"],
     lambda p, **kw: __import__("torch").optim.SGD(p, lr=0.01, momentum=0.9, **kw)),
    ("adam", ["optimizer=adam"], lambda p, **kw: __import__("torch").optim.Adam(p, lr=1e-3, **kw)),
    ("adamw", ["optimizer=adamw"], lambda p, **kw: __import__("torch").optim.AdamW(p, lr=1e-3, **kw)),
    ("amsgrad", ["optimizer=amsgrad"], lambda p, **kw: __import__("torch").optim.Adam(p, lr=1e-3, amsgrad=True, **kw)),
    ("adagrad", ["optimizer=adagrad"], lambda p, **kw: __import__("torch").optim.Adagrad(p, lr=1e-2, **kw)),
]
REFERENCES = ("torch fused, flat", "torch foreach", "torch fused")
NAMES = {"topology=ring": "dsgd, ring (overlap on, the default)", OFF: "dsgd, ring, overlap off",
         "topology=ring backend.shared_memory=true": "dsgd, ring, backend.shared_memory=true",
         "optimizer=choco_sgd compressor=topk": "choco_sgd + top-1%, ring",
         "optimizer=damsco compressor=topk": "damsco + top-1%, ring"}


def worker(variants: list[str], common: list[str], steps: int, repeats: int, threads: int | None) -> None:
    import torch
    from mpi4py import MPI

    from compoptim.cli.world import node_local
    from compoptim.comm.mpi import MPICommunicator
    from compoptim.cores import default_threads
    from compoptim.topology import build_topology
    from compoptim.train import Trainer

    world = MPI.COMM_WORLD
    local = node_local(world)
    torch.set_num_threads(threads or default_threads(local.Get_size()))
    trainers, batches = {}, {}
    for variant in dict.fromkeys([*variants, *map(baseline_of, variants)]):
        cfg = compose_config([*common, *variant.split()])
        comm = MPICommunicator(world.Dup(), build_topology(cfg.topology, world.Get_size()))
        trainers[variant] = Trainer(cfg, comm, Path(tempfile.mkdtemp(prefix="bench_step")),
                                    torch.device("cpu"), log=lambda _m: None)
        batches[variant] = endless(trainers[variant].loader)

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
        k = trainer.comm.counters
        k.compress_time_s = k.comm_time_s = k.wait_time_s = 0.0
    times: dict[str, list[float]] = {v: [] for v in trainers}
    for _ in range(repeats):
        for variant in trainers:
            times[variant].append(block(variant))
    total_steps = steps * repeats
    rows = []
    for variant, trainer in trainers.items():
        c, k = trainer.comm, trainer.comm.counters
        split = torch.tensor([k.compress_time_s, k.comm_time_s, k.wait_time_s], dtype=torch.float64)
        c.allreduce_(split, "mean")
        rows.append({"n": world.Get_size(), "variant": variant, "step_ms": 1e3 * statistics.median(times[variant]),
                     **{f"{k}_ms": 1e3 * v / total_steps for k, v in zip(("compress", "comm", "wait"), split.tolist())},
                     "threads": torch.get_num_threads(), "ranks_per_node": local.Get_size()})
    if world.Get_rank() == 0:
        print("RESULT " + json.dumps(rows), flush=True)


def optimizer_rows(common: list[str], repeats: int) -> list[dict]:
    """compoptim's step() (one node, no communication) vs torch.optim's kernels on the same gradients."""
    import torch

    from compoptim.comm import local_network
    from compoptim.topology import build_topology
    from compoptim.train import Trainer

    torch.set_num_threads(1)  # as one rank per core gets
    torch.manual_seed(0)
    rows = []
    for label, overrides, make in RULE_SPECS:
        cfg = compose_config([*common, *overrides, "topology=none", "backend=local", "backend.nodes=1"])
        comm = local_network(build_topology(cfg.topology, 1))[0]
        trainer = Trainer(cfg, comm, Path(tempfile.mkdtemp(prefix="bench_opt")), torch.device("cpu"),
                          log=lambda _m: None)
        trainer.flat.grads.normal_()
        layers = [p.detach().clone().requires_grad_() for p in trainer.model.parameters()]
        for p, q in zip(layers, trainer.model.parameters()):
            p.grad = q.grad.detach().clone()
        flat = trainer.flat.params.detach().clone().requires_grad_()
        flat.grad = trainer.flat.grads.detach().clone()
        contenders = {"compoptim": trainer.optimizer.step, "torch fused, flat": make([flat], fused=True).step,
                      "torch foreach": make(layers, foreach=True).step, "torch fused": make(layers, fused=True).step}
        if getattr(trainer.optimizer.rule, "fused", False):  # and the op-by-op sequence it replaced
            unfused = Trainer(compose_config([*common, *overrides, "optimizer.fused=false", "topology=none",
                                              "backend=local", "backend.nodes=1"]), comm,
                              Path(tempfile.mkdtemp(prefix="bench_opt")), torch.device("cpu"), log=lambda _m: None)
            unfused.flat.grads.copy_(trainer.flat.grads)
            contenders["compoptim, fused=false"] = unfused.optimizer.step
        times = {name: [] for name in contenders}
        for fn in contenders.values():
            _time_block(fn, 50)
        for _ in range(repeats):
            for name, fn in contenders.items():
                times[name].append(_time_block(fn, 300))
        med = {name: 1e6 * statistics.median(ts) for name, ts in times.items()}
        rows.append({"label": label, "params": trainer.flat.params.numel(), **med})
    return rows


def topk_rows(sizes: list[int], repeats: int) -> list[dict]:
    """Top-1% encode + decode_add (this process, one thread) against torch.topk + index_add_ on
    the same vector, and decode_add alone against index_add_ with ready int64 indices and
    against the previous decode (indices widened to int64 and shifted on every call)."""
    import torch

    from compoptim.compress import CompressContext, build_compressor

    torch.set_num_threads(1)
    rows = []
    for numel in sizes:
        x = torch.randn(numel, generator=torch.Generator().manual_seed(0))
        out = torch.zeros(numel)
        c = build_compressor({"name": "topk", "ratio": 0.01}, CompressContext())
        k = c._plan(numel).keep[0]
        payload = c.encode(x)
        plan = c._plan(numel)
        fields = plan.wire.views(payload)
        ready = plan.flat_indices(fields).to(torch.int64)
        values = fields["values"]

        def torch_topk(x=x, out=out, k=k):
            idx = torch.topk(x.abs(), k, sorted=False).indices
            out.index_add_(0, idx, x[idx])

        def widened_each_call(plan=plan, fields=fields, out=out, values=values):
            idx = torch.cat([fields[name].to(torch.int64) for name in plan.index_fields])
            out.index_add_(0, idx, values)

        contenders = {"encode+decode_add": lambda c=c, x=x, out=out: c.decode_add(c.encode(x), out, 1.0),
                      "torch.topk+index_add_": torch_topk,
                      "decode_add": lambda c=c, p=payload, out=out: c.decode_add(p, out, 1.0),
                      "index_add_, int64 indices ready": lambda o=out, i=ready, v=values: o.index_add_(0, i, v),
                      "decode_add widening indices each call": widened_each_call}
        steps = max(20, 2_000_000 // numel)  # long blocks: the first call after another contender finds a cold cache
        times = {name: [] for name in contenders}
        for fn in contenders.values():
            _time_block(fn, steps)
        for _ in range(repeats):
            for name, fn in contenders.items():
                times[name].append(_time_block(fn, steps))
        rows.append({"numel": numel, "k": k, **{name: 1e3 * statistics.median(ts) for name, ts in times.items()}})
    return rows


def topk_table(rows: list[dict]) -> str:
    head = "| floats (k) | measured | ms | baseline | baseline ms | ratio |"
    pairs = [("encode+decode_add", "torch.topk+index_add_"), ("decode_add", "index_add_, int64 indices ready"),
             ("decode_add", "decode_add widening indices each call")]
    lines = [f"| {r['numel']:,} ({r['k']:,}) | top-1% {a} | {r[a]:.4f} | {b} | {r[b]:.4f} | {r[a] / r[b]:.3f} |"
             for r in rows for a, b in pairs]
    return markdown_table(head, lines)


def _time_block(fn, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def table(rows: list[dict], opt_rows: list[dict], cores: int) -> str:
    head = ("| measured | ranks (per core) | ms per step | baseline | baseline ms | ratio | target | "
            "compress ms | comm ms | wait ms | threads/rank |")
    lines = []
    for n in sorted({r["n"] for r in rows}):
        at_n = {r["variant"]: r for r in rows if r["n"] == n}
        per_core = f"{n} ({next(iter(at_n.values()))['ranks_per_node'] / cores:g})"
        for variant, r in at_n.items():
            if variant not in NAMES and "topology=none" in variant:
                continue  # a baseline
            base = at_n[baseline_of(variant)]
            lines.append(_line(NAMES.get(variant, variant), per_core, r["step_ms"], "no communication",
                               base["step_ms"], TARGETS.get(variant), r))
        if all(v in at_n for v in OVERLAP):
            off, on = at_n[OVERLAP[0]], at_n[OVERLAP[1]]
            lines.append(_line("dsgd, ring: overlap on", per_core, on["step_ms"], "overlap off", off["step_ms"],
                               None, None))
    for r in opt_rows:
        for reference in REFERENCES:
            target = TARGETS["optimizer step"] if reference == "torch fused, flat" else None
            lines.append(_line(f"step(), {r['label']} ({r['params']:,} params)", "1, no comm",
                               r["compoptim"] / 1e3, f"torch.optim {reference[6:]}", r[reference] / 1e3,
                               target, None))
        if "compoptim, fused=false" in r:
            lines.append(_line(f"step(), {r['label']}: fused kernel", "1, no comm", r["compoptim"] / 1e3,
                               "compoptim, fused=false", r["compoptim, fused=false"] / 1e3, None, None))
    return markdown_table(head, lines)


def _line(what: str, ranks: str, ms: float, base_name: str, base_ms: float, target: float | None,
          split: dict | None) -> str:
    ratio = ms / base_ms
    goal = f"<= {target:.2f} ({'met' if ratio <= target else 'NOT met'})" if target else ""
    times = (f"{split['compress_ms']:.3f} | {split['comm_ms']:.3f} | {split['wait_ms']:.3f} | {split['threads']}"
             if split else " | | | ")
    return f"| {what} | {ranks} | {ms:.4f} | {base_name} | {base_ms:.4f} | {ratio:.3f} | {goal} | {times} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nps", type=int, nargs="+", default=[4, 2], help="ranks per job (default: 4 2)")
    parser.add_argument("--variants", nargs="+", default=list(NAMES),
                        help="configs to compare with topology=none, each a space-separated list of overrides")
    parser.add_argument("--common", nargs="*", default=["model=lenet5", "trainer.batch_size=32"],
                        help="overrides shared by every variant (and the optimizer rows)")
    parser.add_argument("--steps", type=int, default=40, help="training steps per timed block")
    parser.add_argument("--repeats", type=int, default=7, help="timed blocks per variant; the median is reported")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per rank (default: the rank's share of the cores, as compoptim-run)")
    parser.add_argument("--mpirun-args", default="", help="extra mpirun arguments, one string")
    parser.add_argument("--mpirun", default=None, help="the mpirun to start the jobs with (default: this venv's)")
    parser.add_argument("--topk-sizes", type=int, nargs="*", default=[269_722, 10_000_000],
                        help="vector lengths of the top-k rows (none: no top-k rows)")
    parser.add_argument("--only-topk", action="store_true", help="only the top-k rows (no MPI jobs)")
    parser.add_argument("--only-rules", action="store_true", help="only the optimizer rows (no MPI jobs)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.variants, args.common, args.steps, args.repeats, args.threads)
        return
    if args.only_topk:
        print(topk_table(topk_rows(args.topk_sizes, args.repeats)))
        return
    if args.only_rules:
        print(table([], optimizer_rows(args.common, args.repeats), usable_cores()[0]))
        return
    threads = ["--threads", str(args.threads)] if args.threads else []
    mpirun = args.mpirun or default_mpirun()
    rows = [row for np_ in args.nps for row in run_worker(__file__, np_, [
        "--steps", str(args.steps), "--repeats", str(args.repeats), "--variants", *args.variants,
        "--common", *args.common, *threads], mpirun_args=[*mpirun_flags(mpirun), *args.mpirun_args.split()],
        mpirun=mpirun)]
    opt_rows = optimizer_rows(args.common, args.repeats)
    cores = usable_cores()[0]
    print(f"{cores} cores; common: {' '.join(args.common)}")
    print(table(rows, opt_rows, cores))
    if args.topk_sizes:
        print(topk_table(topk_rows(args.topk_sizes, args.repeats)))


if __name__ == "__main__":
    main()
