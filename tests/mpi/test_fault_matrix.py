"""The fault matrix under real mpirun: {exception, SIGKILL, SIGINT, NaN, stuck} x {during setup,
training, a checkpoint write, evaluation} x n in {2, 3}, the fault on rank 0 (the writer)
with 2 ranks and on the last rank with 3 (``fault_inject.py``). Every cell ends within 30 s,
exits non-zero with the code of what happened, and leaves readable files whose summary.json
status says what happened.

``pytest tests/mpi/test_fault_matrix.py --durations=0`` lists each cell's end time.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import mpi_env, tool

pytestmark = pytest.mark.slow

FAULTS = ("exception", "sigkill", "sigint", "nan", "stuck")
PHASES = ("setup", "training", "checkpoint", "evaluation")
RUN = ["model=mlp", "model.hidden=[16]", "trainer.epochs=4", "trainer.checkpoint_every=1", "trainer.threads=1",
       "backend.timeout_s=4", "hydra.run.dir=run"]
LIMIT_S = 30
# What each fault must end as: summary.json status(es) and the exit code (None: any non-zero).
EXPECTED = {
    "exception": ({"failed"}, None),
    "sigkill": ({"killed", "failed"}, None),  # rank 0 sees the MPI error first, or the watchdog marks it
    "sigint": ({"interrupted"}, 130),
    "nan": ({"diverged"}, 4),
    "stuck": ({"failed"}, None),  # a neighbour's exchange or a reduction times out (backend.timeout_s)
}


CELLS = [(fault, phase, n) for fault in FAULTS for phase in PHASES for n in (2, 3)]
# Cells at once: part of a cell is waiting (a timeout, the watchdog), so two share the two
# cores of CI and each still ends well below LIMIT_S.
PARALLEL = 2


def fault_rank(n: int) -> int:
    """Rank 0 (the one that writes the run's files) with 2 ranks, the last rank with 3."""
    return 0 if n == 2 else n - 1


def run_cell(fault: str, phase: str, n: int, cwd: Path) -> dict:
    """One cell in ``cwd``: its exit code, stderr and seconds; the whole job is killed past LIMIT_S."""
    cwd.mkdir(parents=True)
    env = {**mpi_env(), "FAULT": fault, "PHASE": phase, "FAULT_RANK": str(fault_rank(n))}
    begin = time.monotonic()
    job = subprocess.Popen([tool("mpirun"), "-np", str(n), sys.executable, str(Path(__file__).with_name(
        "fault_inject.py")), *RUN], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        _, err = job.communicate(timeout=LIMIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)
        _, err = job.communicate()
    seconds = time.monotonic() - begin
    run = cwd / "run"
    deadline = time.monotonic() + 5  # the watchdog writes just after the job's end
    while _status(run) == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    return {"code": job.returncode, "stderr": err, "seconds": seconds, "run": run}


def _status(run: Path) -> str | None:
    try:
        return json.loads((run / "summary.json").read_text())["status"]
    except (OSError, ValueError, KeyError):
        return None


@pytest.fixture(scope="module")
def matrix(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("faults")
    with ThreadPoolExecutor(PARALLEL) as pool:
        futures = {cell: pool.submit(run_cell, *cell, root / "-".join(map(str, cell))) for cell in CELLS}
    results = {cell: future.result() for cell, future in futures.items()}
    print("\nfault matrix: seconds to the end of each cell (the fault on rank 0 with n=2, rank 2 with n=3)")
    for fault in FAULTS:
        for phase in PHASES:
            cells = [results[(fault, phase, n)] for n in (2, 3)]
            print(f"  {fault:>9} during {phase:<10}  n=2: {cells[0]['seconds']:5.1f} s (exit {cells[0]['code']}, "
                  f"{_status(cells[0]['run'])})  n=3: {cells[1]['seconds']:5.1f} s (exit {cells[1]['code']}, "
                  f"{_status(cells[1]['run'])})")
    return results


@pytest.mark.parametrize("fault, phase, n", CELLS, ids=["-".join(map(str, c)) for c in CELLS])
def test_a_fault_ends_the_job_in_time_with_readable_files_that_say_what_happened(matrix, fault, phase, n):
    cell = matrix[(fault, phase, n)]
    code, err, run = cell["code"], cell["stderr"], cell["run"]
    statuses, expected_code = EXPECTED[fault]
    assert cell["seconds"] < LIMIT_S and code != 0, err
    if expected_code is not None:
        assert code == expected_code, err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] in statuses, (summary, err)
    if (run / "metrics.csv").exists():
        with open(run / "metrics.csv") as f:
            rows = list(csv.DictReader(f))
        assert all(None not in row.values() for row in rows)  # whole rows only
    if fault != "sigkill":  # a kill can stop a rank between a temporary file and its rename
        assert not [p for p in run.rglob("*") if ".tmp" in p.name]
    if fault != "exception":  # expected stops are one line, not a traceback per rank
        assert "Traceback" not in err, err
