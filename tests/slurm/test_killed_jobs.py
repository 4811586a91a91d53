"""A job SLURM ends (scancel, a node failure) leaves readable files and a status that says
how it ended; a sweep reports a killed job as failed while its other jobs finish."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import tool
from tests.slurm.cluster import WAIT_S, doc_script, epochs_written, wait_for

SETTINGS = ("trainer.epochs=40", "trainer.threads=1")  # far longer than the tests wait


def readable(run: Path) -> dict:
    """The run's summary, after checking that its metrics parse."""
    with open(run / "metrics.csv") as f:
        assert len(list(csv.DictReader(f))) >= 2  # epoch 0 and at least one trained epoch
    assert (run / "compoptim.log").read_text()
    return json.loads((run / "summary.json").read_text())


def test_scancel_ends_the_run_preempted_with_a_checkpoint(cluster, tmp_path):
    """Plain scancel: SIGTERM, then SIGKILL after KillWait (5 s here); the epoch in progress
    ends well before that, so every rank checkpoints."""
    job = cluster.sbatch(doc_script(tmp_path), *SETTINGS, options=("--overcommit",), cwd=tmp_path)
    run = tmp_path / "runs" / job
    wait_for(lambda: epochs_written(run) >= 1, f"job {job}'s first epoch")
    assert cluster.run("scancel", job).returncode == 0
    assert cluster.wait_end(job) == "CANCELLED"
    wait_for(lambda: json.loads((run / "summary.json").read_text())["status"] != "running", "the run's status")
    summary = readable(run)
    assert summary["status"] == "preempted", summary
    (checkpoint,) = (run / "checkpoints").iterdir()
    assert (checkpoint / "manifest.json").exists()


def test_a_node_failure_leaves_the_run_killed(cluster, tmp_path):
    """The node fails under the job: the step's slurmstepd and ranks die by SIGKILL, and the
    node is marked down (what slurmctld does when a node stops answering)."""
    job = cluster.sbatch(doc_script(tmp_path), *SETTINGS, options=("--overcommit", "--no-requeue"), cwd=tmp_path)
    run = tmp_path / "runs" / job
    wait_for(lambda: epochs_written(run) >= 1, f"job {job}'s first epoch")
    stepd, ranks = step_processes(cluster, job)
    assert stepd and len(ranks) == 4, (stepd, ranks)
    for pid in [*stepd, *ranks]:
        os.kill(pid, signal.SIGKILL)
    node = socket.gethostname().split(".")[0]
    try:
        cluster.scontrol("update", f"NodeName={node}", "State=DOWN", "Reason=simulated node failure")
        assert cluster.wait_end(job) == "NODE_FAIL"
    finally:
        cluster.run("scontrol", "update", f"NodeName={node}", "State=RESUME")  # refused when it is back already
        cluster.wait_idle()
    wait_for(lambda: json.loads((run / "summary.json").read_text())["status"] != "running", "the run's status")
    summary = readable(run)
    assert summary["status"] == "killed" and "without recording a result" in summary["error"]
    assert "node failure" in (tmp_path / f"slurm-{job}.out").read_text().lower()  # srun says it


def step_processes(cluster, job: str) -> tuple[list[int], list[int]]:
    """(the pids of slurmstepd for the job's first step, the pids of its tasks); ``job`` may
    be an array task (``12_1``)."""
    job = cluster.run("squeue", "-h", "-j", job, "-o", "%A").stdout.strip()  # an array task's own job id
    step = subprocess.run(["pgrep", "-f", rf"slurmstepd: \[{job}\.0\]"], capture_output=True, text=True, check=False)
    rows = [line.split() for line in cluster.run("scontrol", "listpids", job).stdout.splitlines()[1:]]
    tasks = [int(r[0]) for r in rows if len(r) >= 4 and r[2] == "0" and r[3] != "-"]  # step 0, a local task id
    return [int(p) for p in step.stdout.split()], tasks


VICTIM = 1  # the sweep's job that SLURM or the kernel ends
# How the victim ends -> the end of the sweep's one-line error about it. A scancel is SIGTERM
# first (SLURM turns even scancel --signal=KILL into a cancel), so the run checkpoints in time.
ENDINGS = {
    "scancel": "preempted: stopped by a signal after epoch ",
    "SIGKILL to its ranks": "SLURM job {task} ended FAILED (NonZeroExitCode) without a result; the run's status: "
                            "killed (sweep/1/summary.json)",
}


@pytest.mark.parametrize("ending", ENDINGS)
def test_a_sweep_reports_the_job_slurm_ended_and_the_others_finish(cluster, tmp_path, ending):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs pip install 'compoptim[slurm]'")
    sweep = tmp_path / "sweep"
    run = sweep / str(VICTIM)
    proc = cluster.popen(tool("compoptim-run"), "-m", "trainer.epochs=2,40,2", "trainer.threads=1", "model=mlp",
                         "model.hidden=[16]", "hydra/launcher=submitit_slurm_mpi", "hydra.launcher.tasks_per_node=2",
                         "hydra.launcher.cpus_per_task=1", "hydra.launcher.timeout_min=10", "hydra.sweep.dir=sweep",
                         cwd=tmp_path, log=tmp_path / "sweep.log")
    try:
        wait_for(lambda: epochs_written(run) >= 1, f"job {VICTIM}'s first epoch")
        (task,) = (sweep / ".submitit").glob(f"*_{VICTIM}")
        if ending == "scancel":
            assert cluster.run("scancel", task.name).returncode == 0
        else:
            ranks = step_processes(cluster, task.name)[1]
            assert len(ranks) == 2, ranks
            for pid in ranks:
                os.kill(pid, signal.SIGKILL)
        started = time.monotonic()
        proc.wait(timeout=WAIT_S)
    finally:
        proc.kill()
    output = (tmp_path / "sweep.log").read_text()
    assert proc.returncode == 1, output
    error = [line for line in output.splitlines() if line.startswith("compoptim-run: error:")]
    head = (f"compoptim-run: error: 1 of 3 jobs failed: job {VICTIM} (trainer.epochs=40 trainer.threads=1 model=mlp "
            f"model.hidden=[16]): {ENDINGS[ending].format(task=task.name)}")
    assert len(error) == 1 and error[0].startswith(head), output
    statuses = [json.loads((sweep / str(i) / "summary.json").read_text())["status"] for i in range(3)]
    assert statuses == ["finished", "preempted" if ending == "scancel" else "killed", "finished"]
    readable(run)
    assert time.monotonic() - started < 60  # the sweep did not wait for the killed job's 40 epochs
