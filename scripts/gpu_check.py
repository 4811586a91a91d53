"""GPU check: ranks sharing one GPU train ResNet-20 on a CIFAR-shaped synthetic set.

    python scripts/gpu_check.py                      # -np 2 and 4, compressor none and topk, 2 epochs
    python scripts/gpu_check.py --nps 2 --mpirun mpirun --extra "--allow-run-as-root --oversubscribe"

Runs ``compoptim-run trainer.device=cuda model=resnet20 dataset=synthetic
dataset.image_shape=[3,32,32]`` under mpirun for each (ranks, compressor), then reads each
run's summary.json and prints the time per step and the fractions of the training time
spent in compression, communication and waiting (CUDA kernels run asynchronously, so a
kernel's time lands where the host next waits; the fractions are indicative).
Use the MPI launcher that matches the mpi4py build (``--mpirun``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nps", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--compressors", nargs="+", default=["none", "topk"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--mpirun", default=str(Path(sys.executable).with_name("mpirun")))
    parser.add_argument("--run", default=str(Path(sys.executable).with_name("compoptim-run")),
                        help="the compoptim-run to launch")
    parser.add_argument("--extra", default="", help="extra mpirun arguments, one string")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="gpu_check"))
    print("| ranks | compressor | test acc | step ms | compress | comm | wait | MB/node |")
    print("|---|---|---|---|---|---|---|---|")
    for np_ in args.nps:
        for compressor in args.compressors:
            run_dir = root / f"np{np_}-{compressor}"
            cmd = [args.mpirun, *shlex.split(args.extra), "-np", str(np_), args.run, "trainer.device=cuda",
                   "model=resnet20", "dataset=synthetic", "dataset.image_shape=[3,32,32]", "dataset.samples=8000",
                   "dataset.classes=10", "dataset/partition=iid", "trainer.batch_size=64",
                   f"trainer.epochs={args.epochs}", "optimizer=sgd", "optimizer.lr=0.05",
                   f"compressor={compressor}", f"hydra.run.dir={run_dir}"]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            try:
                s = json.loads((run_dir / "summary.json").read_text())
            except (OSError, ValueError):
                s = {}
            if s.get("status") != "finished":
                print(f"| {np_} | {compressor} | failed: {s.get('error') or proc.stderr.strip()[-300:]} | | | | | |")
                continue
            train = s["train_time_s"] or float("nan")
            print(f"| {np_} | {compressor} | {s['test_acc']:.3f} | {1e3 * train / s['steps']:.1f} "
                  f"| {s['compress_time_s'] / train:.1%} | {s['comm_time_s'] / train:.1%} "
                  f"| {s['wait_time_s'] / train:.1%} | {s['bytes_sent_per_node'] / 1e6:.1f} |")


if __name__ == "__main__":
    main()
