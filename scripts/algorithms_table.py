"""Train every named algorithm with its preset defaults and tabulate accuracy, bytes and time.

    python scripts/algorithms_table.py                       # mpirun -np 4, ring, LeNet-5 on digits, 30 epochs
    python scripts/algorithms_table.py --backend local --only sgd adam --compressors none topk
    python scripts/algorithms_table.py --extra trainer.epochs=5 --out table.md

Each algorithm runs with ``compressor=none`` and, where it supports compression, with
``compressor=topk`` (the default 1% ratio), and in the VARIANTS below (``sgp`` on its
directed one-peer graph, ``squarm_sgd`` with its event trigger). Every run is a real
``compoptim-run`` in its own output directory (under --root); the table is read back from
the runs' summary.json. Runs one at a time, so wall times compare on this machine. An
asynchronous algorithm (``adpsgd``) needs MPI ranks and is left out with ``--backend local``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def algorithms() -> list[str]:
    from compoptim.optim import ALGORITHMS

    return sorted(ALGORITHMS)


def uncompressed_only() -> set[str]:
    """Algorithms defined with exact gossip or all-reduce only (declared: no compressed variant)."""
    from compoptim.optim import ALGORITHMS

    return set(ALGORITHMS.with_fact("compressible", False))


# Extra rows: (label, overrides) run as well as the algorithm's preset.
VARIANTS = {
    "sgp": [("directed one-peer", ["topology=one_peer_directed_exponential"])],
    "squarm_sgd": [("trigger 1e5", ["optimizer.trigger=1e5"])],
}


def asynchronous() -> set[str]:
    from compoptim.optim import ALGORITHMS

    return set(ALGORITHMS.with_fact("asynchronous"))


def run(algorithm: str, compressor: str, args: argparse.Namespace, label: str = "",
        variant: tuple[str, ...] = ()) -> dict:
    bindir = Path(sys.executable).parent
    run_dir = Path(args.root) / f"{algorithm}-{compressor}{'-' + label.replace(' ', '_') if label else ''}"
    overrides = [f"optimizer={algorithm}", f"compressor={compressor}", f"hydra.run.dir={run_dir}", *variant,
                 *args.extra]
    if args.backend == "local":
        cmd = [str(bindir / "compoptim-run"), "backend=local", f"backend.nodes={args.np}", *overrides]
    else:
        cmd = [str(bindir / "mpirun"), "-np", str(args.np), str(bindir / "compoptim-run"), *overrides]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        summary = {"status": "failed", "error": proc.stderr.strip().splitlines()[-1:] or ["?"]}
    name = f"{algorithm} ({label})" if label else algorithm
    return {"algorithm": name, "compressor": compressor, "command_s": elapsed, **summary}


def table(rows: list[dict], target: float) -> str:
    lines = ["| algorithm | compressor | test acc (averaged model) | >= target | MB sent per node | train s "
             "| command s |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("status") != "finished":
            lines.append(f"| {r['algorithm']} | {r['compressor']} | failed: {r.get('error')} | no | | | |")
            continue
        acc = r["test_acc"] if r["test_acc"] is not None else float("nan")
        lines.append(f"| {r['algorithm']} | {r['compressor']} | {acc:.4f} | {'yes' if acc >= target else 'NO'} "
                     f"| {r['bytes_sent_per_node'] / 1e6:.2f} | {r['train_time_s']:.1f} | {r['command_s']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--np", type=int, default=4, help="nodes (default 4)")
    parser.add_argument("--backend", choices=("mpi", "local"), default="mpi")
    parser.add_argument("--only", nargs="*", help="algorithms to run (default: all)")
    parser.add_argument("--compressors", nargs="*", default=["none", "topk"])
    parser.add_argument("--extra", nargs="*", default=[], help="overrides added to every run")
    parser.add_argument("--root", default="runs/algorithms", help="where the run directories go")
    parser.add_argument("--target", type=float, default=0.93)
    parser.add_argument("--out", type=Path, help="also write the table (Markdown) here")
    args = parser.parse_args()
    rows = []
    for algorithm in args.only or algorithms():
        if args.backend == "local" and algorithm in asynchronous():
            print(f"{algorithm}: left out (asynchronous: MPI ranks only)", flush=True)
            continue
        for compressor in args.compressors:
            if compressor != "none" and algorithm in uncompressed_only():
                continue
            for label, variant in [("", []), *VARIANTS.get(algorithm, [])]:
                rows.append(run(algorithm, compressor, args, label, tuple(variant)))
                print(table(rows[-1:], args.target).splitlines()[-1], flush=True)
    text = table(rows, args.target)
    print("\n" + text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
