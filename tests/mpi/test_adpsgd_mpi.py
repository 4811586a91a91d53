"""AD-PSGD under real mpirun: the window invariants, a 10x slower rank that the others do
not wait for, the staleness it reports, the accuracy it reaches, and a killed rank that
still ends the job in time."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import mpi_env, tool
from tests.mpi.test_cli_mpi import launch

pytestmark = pytest.mark.mpi


@pytest.mark.parametrize("np_", [2, 4])
def test_asynchronous_averaging_preserves_the_sum_loses_no_update_and_does_not_wait(tmp_path, np_):
    script = Path(__file__).with_name("adpsgd_check.py")
    result = launch(np_, [], tmp_path, program=[sys.executable, str(script)])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_adpsgd_converges_to_the_optimum_of_a_convex_problem(tmp_path):
    """Least squares with a common optimum, constant step, one rank slowed: every node reaches
    x* (measured: 1.5e-15 relative after 1500 steps each)."""
    script = Path(__file__).with_name("adpsgd_convex_check.py")
    result = launch(4, [], tmp_path, program=[sys.executable, str(script)])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


def _rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_a_10x_slower_rank_does_not_hold_the_others_back(tmp_path):
    """4 ranks on a ring, rank 3's steps made 10x as long: the others keep stepping, the
    staleness is reported, and the averaged model reaches 0.88 on digits (0.955 measured on an
    idle machine, 0.919 once under load: how stale the gradients get depends on the scheduler;
    test_adpsgd_converges_to_the_optimum_of_a_convex_problem checks convergence itself)."""
    epochs = 12
    args = ["optimizer=adpsgd", f"trainer.epochs={epochs}", "trainer.threads=1", "backend.stragglers=[3]",
            "backend.straggler_factor=10", "hydra.run.dir=run"]
    result = launch(4, args, tmp_path)
    assert result.returncode == 0, result.stderr
    rows, nodes = _rows(tmp_path / "run" / "metrics.csv"), _rows(tmp_path / "run" / "metrics_nodes.csv")
    last = [r for r in nodes if int(r["epoch"]) == epochs]
    steps = [int(r["step"]) for r in last]
    # measured: 174, 190, 193 steps against 19 for the slowed rank; accuracy 0.955
    assert min(steps[:3]) >= 5 * steps[3], steps
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    per_epoch = sum(steps) // epochs  # n x (batches per shard): the shared budget of each epoch
    assert sum(steps) == epochs * per_epoch and int(rows[-1]["step"]) == per_epoch * epochs // 4
    assert float(rows[-1]["staleness_mean"]) > 0 and float(rows[-1]["staleness_max"]) >= 1
    assert float(rows[-1]["test_acc"]) >= 0.88, [r["test_acc"] for r in rows]
    numel = summary["num_params"]
    for r in last:  # one get and one accumulate of the model and its counter per step
        assert float(r["bytes_sent"]) == float(r["messages_sent"]) * (numel + 1) * 4 == int(r["step"]) * (numel + 1) * 4


def test_a_killed_rank_ends_the_job_within_30_s(tmp_path):
    env = {**mpi_env(), "FAULT": "sigkill", "PHASE": "training", "FAULT_RANK": "1"}
    script = Path(__file__).with_name("fault_inject.py")
    begin = time.monotonic()
    job = subprocess.Popen([tool("mpirun"), "-np", "3", sys.executable, str(script), "optimizer=adpsgd",
                            "trainer.epochs=50", "hydra.run.dir=run"], cwd=tmp_path, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        job.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)
        job.communicate()
    seconds = time.monotonic() - begin
    assert job.returncode != 0 and seconds < 30, seconds
    deadline = time.monotonic() + 5  # the watchdog marks the run just after the job's end
    while time.monotonic() < deadline:
        status = json.loads((tmp_path / "run" / "summary.json").read_text())["status"]
        if status != "running":
            break
        time.sleep(0.05)
    assert status in ("killed", "failed")


def test_adpsgd_is_refused_where_it_cannot_run(tmp_path):
    local = launch(None, ["optimizer=adpsgd", "backend=local", "backend.nodes=2"], tmp_path)
    assert local.returncode != 0
    assert "optimizer=adpsgd) reads and writes the neighbours' models through MPI one-sided windows" in local.stderr
    net = launch(2, ["optimizer=adpsgd", "network=ethernet_1g"], tmp_path)
    assert net.returncode != 0 and "optimizer=adpsgd is asynchronous" in net.stderr


@pytest.mark.slow
def test_the_straggler_benchmark_smoke_mode_prints_its_table():
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(root / "scripts" / "bench_straggler.py"), "--smoke"], cwd=root,
                          capture_output=True, text=True, timeout=600, env=mpi_env(), check=False)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| dsgd") or line.startswith("| adpsgd")]
    assert len(rows) == 4 and all(r.count("|") == 9 for r in rows)


def test_an_asynchronous_run_resumes_from_its_checkpoint(tmp_path):
    """Not bit-exact (the averagings' order is the machines'), but it continues: every rank's
    window restarts from its checkpointed model and the epochs' step budgets carry on."""
    args = ["optimizer=adpsgd", "model=mlp", "model.hidden=[32]", "trainer.checkpoint_every=1", "hydra.run.dir=run"]
    first = launch(2, [*args, "trainer.epochs=2"], tmp_path)
    assert first.returncode == 0, first.stderr
    again = launch(2, [*args, "trainer.epochs=3", "resume=true"], tmp_path)
    assert again.returncode == 0, again.stderr
    rows = _rows(tmp_path / "run" / "metrics.csv")
    steps = [int(r["step"]) for r in rows]
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3] and steps == [0, steps[1], 2 * steps[1], 3 * steps[1]]
    # No accuracy bar: on an overloaded machine the OS may pause a rank for many of its
    # neighbour's steps, and the stale gradients of lr 0.2 then set the MLP back (seen once).
    assert all(math.isfinite(float(r["test_loss"])) for r in rows)
    assert float(rows[3]["bytes_sent_per_node"]) > float(rows[2]["bytes_sent_per_node"])
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "finished"
