"""A real straggler: synchronous D-PSGD against asynchronous AD-PSGD, with rank 3 of 4 slowed.

    python scripts/bench_straggler.py            # mpirun -np 4, LeNet-5 on digits, 8 epochs
    python scripts/bench_straggler.py --smoke    # an MLP, 1 epoch (CI)

Four runs, one at a time, each a real ``mpirun -np 4 compoptim-run`` on a ring: ``dsgd`` and
``adpsgd``, without and with ``backend.stragglers=[3] backend.straggler_factor=10`` (rank 3
sleeps 9x its own step time after every step). Both methods process the same number of
samples per epoch (AD-PSGD: n x batches per shard steps over all ranks, however they are
spread). Columns, read back from each run's metrics: the training time, the steps each rank
took, the fast ranks' steps per second of training, the mean staleness and the final test
accuracy of the averaged model. On this 2-core machine 4 ranks share 2 cores, so compare
the ratios within one run of the script.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent
SLOW = ["backend.stragglers=[3]", "backend.straggler_factor=10"]


def run(method: str, slowed: bool, epochs: int, smoke: bool, root: Path) -> dict:
    run_dir = root / f"{method}{'-slow' if slowed else ''}"
    model = ["model=mlp", "model.hidden=[32]"] if smoke else []
    cmd = [str(BIN / "mpirun"), "-np", "4", str(BIN / "compoptim-run"), f"optimizer={method}",
           f"trainer.epochs={epochs}", "trainer.threads=1", f"hydra.run.dir={run_dir}", *model,
           *(SLOW if slowed else [])]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    with open(run_dir / "metrics.csv") as f:
        last = list(csv.DictReader(f))[-1]
    with open(run_dir / "metrics_nodes.csv") as f:
        nodes = [r for r in csv.DictReader(f) if r["epoch"] == last["epoch"]]
    steps = [int(r["step"]) for r in nodes]
    train = float(last["train_time_s"])
    return {"method": method, "straggler": "rank 3 x10" if slowed else "none", "train_s": train, "steps": steps,
            "fast_steps_per_s": sum(steps[:3]) / 3 / train, "staleness": float(last["staleness_mean"]),
            "acc": float(last["test_acc"])}


def table(rows: list[dict]) -> str:
    base = {r["method"]: r for r in rows if r["straggler"] == "none"}
    lines = ["| method | straggler | train s | vs no straggler | steps per rank | fast ranks' steps/s | "
             "staleness | test acc |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = r["train_s"] / base[r["method"]]["train_s"]
        lines.append(f"| {r['method']} | {r['straggler']} | {r['train_s']:.2f} | {ratio:.2f}x | "
                     f"{', '.join(map(str, r['steps']))} | {r['fast_steps_per_s']:.1f} | {r['staleness']:.2f} | "
                     f"{r['acc']:.4f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="an MLP, 1 epoch")
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    epochs = 1 if args.smoke else args.epochs
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run(method, slowed, epochs, args.smoke, Path(tmp)) for method in ("dsgd", "adpsgd")
                for slowed in (False, True)]
    print(table(rows))


if __name__ == "__main__":
    main()
