"""Reliability under real mpirun: SIGKILL mid-training then resume gives bit-identical
metrics; SIGTERM checkpoints and stops cleanly; a stuck neighbour is named. (Every fault
on every phase: test_fault_matrix.py.)"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import mpi_env, replacing, tool
from tests.mpi.test_cli_mpi import launch

pytestmark = pytest.mark.mpi

RUN = ["trainer.epochs=10", "trainer.checkpoint_every=1", "trainer.threads=1", "trainer.batch_size=16"]


def rows(run: Path, name: str = "metrics.csv") -> list[dict]:
    with open(run / name) as f:
        return [{k: v for k, v in r.items() if "time" not in k} for r in csv.DictReader(f)]


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    cmd = [tool("mpirun"), "-np", "2", tool("compoptim-run"), *args]
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=mpi_env(),
                            start_new_session=True)


@pytest.mark.parametrize("algorithm", [["optimizer=dsgd"], ["optimizer=deepsqueeze", "compressor=topk"]],
                         ids=["dsgd", "deepsqueeze_topk"])  # DeepSqueeze: error-compensated compression
def test_sigkill_then_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, algorithm):
    straight = launch(2, [*RUN, *algorithm, "hydra.run.dir=straight"], tmp_path)
    assert straight.returncode == 0, straight.stderr
    job = start([*RUN, *algorithm, "hydra.run.dir=killed"], tmp_path)
    manifest = tmp_path / "killed" / "checkpoints" / "epoch_00003" / "manifest.json"
    deadline = time.monotonic() + 120
    while not manifest.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(job.pid, signal.SIGKILL)  # the whole job, mid-training
    job.wait(timeout=30)
    assert manifest.exists()
    summary = json.loads((tmp_path / "killed" / "summary.json").read_text())
    assert summary["status"] in ("running", "killed")  # never got to write its end (the watchdog says killed)
    resumed = launch(2, [*RUN, *algorithm, "hydra.run.dir=killed", "resume=true"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout
    assert rows(tmp_path / "killed") == rows(tmp_path / "straight")
    assert rows(tmp_path / "killed", "metrics_nodes.csv") == rows(tmp_path / "straight", "metrics_nodes.csv")


def test_resume_without_retyping_continues_with_the_runs_own_settings(tmp_path):
    """After a SIGKILL, ``resume=true hydra.run.dir=DIR`` alone restores the run's settings
    (bit-identical to an uninterrupted run, wall time continuous); a setting that would change
    the result so far is refused by name with both values; more epochs are allowed with a
    constant schedule."""
    settings = [*RUN, "model=mlp", "model.hidden=[16]", "optimizer.lr=0.05"]
    straight = launch(2, [*settings, "hydra.run.dir=straight"], tmp_path)
    assert straight.returncode == 0, straight.stderr
    job = start([*settings, "hydra.run.dir=killed"], tmp_path)
    manifest = tmp_path / "killed" / "checkpoints" / "epoch_00004" / "manifest.json"
    deadline = time.monotonic() + 120
    while not manifest.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait(timeout=30)
    assert manifest.exists()
    changed = launch(2, ["resume=true", "hydra.run.dir=killed", "optimizer.lr=0.5"], tmp_path)
    assert changed.returncode == 2 and "optimizer.lr: 0.05 -> 0.5" in changed.stderr, changed.stderr
    resumed = launch(2, ["resume=true", "hydra.run.dir=killed"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout
    assert rows(tmp_path / "killed") == rows(tmp_path / "straight")
    with open(tmp_path / "killed" / "metrics.csv") as f:
        wall = [float(r["wall_time_s"]) for r in csv.DictReader(f)]
    assert wall == sorted(wall) and wall[-1] > 0
    longer = launch(2, ["resume=true", "hydra.run.dir=killed", "trainer.epochs=12"], tmp_path)
    assert longer.returncode == 0, longer.stderr
    assert len(rows(tmp_path / "killed")) == 13  # epochs 0..12
    cosine = launch(2, ["resume=true", "hydra.run.dir=killed", "trainer.epochs=14", "trainer.lr_schedule=cosine"],
                    tmp_path)
    assert cosine.returncode == 2 and "trainer.lr_schedule: constant -> cosine" in cosine.stderr


def test_resume_refuses_another_world_size_or_config(tmp_path):
    short = replacing(RUN, "trainer.epochs=2")
    first = launch(2, [*short, "hydra.run.dir=run"], tmp_path)
    assert first.returncode == 0, first.stderr
    other_n = launch(3, [*short, "hydra.run.dir=run", "resume=true"], tmp_path)
    assert other_n.returncode == 2 and "is from 2 nodes; this run has 3" in other_n.stderr
    other_cfg = launch(2, [*short, "optimizer.lr=0.5", "hydra.run.dir=run", "resume=true"], tmp_path)
    assert other_cfg.returncode == 2 and "is from a different configuration" in other_cfg.stderr
    (tmp_path / "run" / "checkpoints" / "epoch_00002" / "rank_1.pt").write_bytes(b"not a checkpoint")
    corrupt = launch(2, [*short, "hydra.run.dir=run", "resume=true"], tmp_path)
    assert corrupt.returncode != 0 and "the checkpoint is corrupt" in corrupt.stderr
    fresh = launch(2, [*RUN, "resume=true"], tmp_path)
    assert fresh.returncode == 2 and "holds no complete checkpoint" in fresh.stderr


# A killed, raising, diverging or stuck rank: tests/mpi/test_fault_matrix.py.


def test_sigterm_checkpoints_at_the_epoch_end_and_stops(tmp_path):
    job = start(["trainer.epochs=200", "trainer.threads=1", "model=mlp", "model.hidden=[16]",
                 "hydra.run.dir=run"], tmp_path)
    metrics = tmp_path / "run" / "metrics.csv"
    deadline = time.monotonic() + 60
    while not (metrics.exists() and len(metrics.read_text().splitlines()) > 3) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(job.pid, signal.SIGTERM)
    _, err = job.communicate(timeout=60)
    assert job.returncode != 0 and b"stopped by a signal after epoch" in err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "preempted"
    assert list((tmp_path / "run" / "checkpoints").glob("*/manifest.json"))
    resumed = launch(2, ["trainer.epochs=200", "trainer.threads=1", "model=mlp", "model.hidden=[16]",
                         "hydra.run.dir=run", "resume=true"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr


STUCK = """
import time
from mpi4py import MPI
from compoptim.optim.decentralized import Decentralized as RuleOptimizer
_step = RuleOptimizer.step
def step(self, closure=None):
    if MPI.COMM_WORLD.Get_rank() == 2 and self.t == 3:
        time.sleep(600)  # alive but stuck
    _step(self, closure)
RuleOptimizer.step = step
from compoptim.cli.run import main
main()
"""


def test_a_stuck_neighbour_is_an_error_with_a_timeout(tmp_path):
    script = tmp_path / "stuck.py"
    script.write_text(STUCK)
    begin = time.monotonic()
    result = launch(3, ["model=mlp", "model.hidden=[16]", "backend.timeout_s=2"], tmp_path,
                    program=[sys.executable, str(script)])
    assert result.returncode != 0 and time.monotonic() - begin < 30
    assert "no exchange with neighbour rank(s) 2 within backend.timeout_s=2 s: a rank is stuck or gone" in result.stderr
    assert "Traceback" not in result.stderr
