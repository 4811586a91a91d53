"""The hot-path benchmarks run and print their tables (smoke modes: small blocks, -np 2)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import mpi_env

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _table(stdout: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| ranks") and not line.startswith("| measured")]


@pytest.mark.slow
def test_bench_comm_smoke_prints_every_baseline_as_a_ratio_to_the_floor():
    done = subprocess.run([sys.executable, str(SCRIPTS / "bench_comm.py"), "--smoke"], cwd=SCRIPTS,
                          capture_output=True, text=True, timeout=300, env=mpi_env(), check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("MPICH") or "Open MPI" in done.stdout.splitlines()[0]
    rows = _table(done.stdout)
    assert [(r[0], r[1]) for r in rows] == [("2", "small (64 floats)"), ("2", "lenet5 (61,706 floats)")]
    for row in rows:
        ratios = [float(cell.rstrip("x")) for cell in row[3:10]]  # compoptim, floor + mix, shared, gloo, ...
        assert all(math.isfinite(r) and r > 0 for r in ratios), row


@pytest.mark.slow
def test_bench_step_rule_rows_compare_each_rule_with_torchs_fused_kernel_on_one_flat_tensor():
    done = subprocess.run([sys.executable, str(SCRIPTS / "bench_step.py"), "--only-rules", "--repeats", "1"],
                          cwd=SCRIPTS, capture_output=True, text=True, timeout=300, env=mpi_env(), check=False)
    assert done.returncode == 0, done.stderr
    rows = _table(done.stdout)
    flat = [r for r in rows if r[3] == "torch.optim fused, flat"]
    assert [r[0].split(" (")[0] for r in flat] == ["step(), sgd, momentum 0.9", "step(), adam", "step(), adamw",
                                                   "step(), amsgrad", "step(), adagrad"]
    assert all(r[6].startswith("<= 1.00") for r in flat)
    # the rules with a fused kernel are timed against their own op-by-op sequence too
    assert [r[0] for r in rows if r[3] == "compoptim, fused=false"] == [
        "step(), adam: fused kernel", "step(), adamw: fused kernel", "step(), amsgrad: fused kernel",
        "step(), adagrad: fused kernel"]
