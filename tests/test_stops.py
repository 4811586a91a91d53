"""How a run ends when it does not finish, in the in-process backend (no mpirun): divergence,
Ctrl-C, a kill, a full disk. Each is one line (never a traceback), an exit code of its own
(``signals.py``), a summary.json status that says what happened, files that stay readable
and no temporary file left behind. The same under real mpirun: tests/mpi/test_fault_matrix.py."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import compoptim
from compoptim.cli.watchdog import KILLED
from compoptim.errors import UserError
from compoptim.train.signals import Diverged, Interrupted, Preempted
from compoptim.train.writer import atomic_write_text, save_tensors
from tests.conftest import mpi_env, tool

TINY = ["backend=local", "backend.nodes=2", "model=mlp", "model.hidden=[16]", "trainer.threads=1"]


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if ".tmp" in p.name)


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([tool("compoptim-run"), *TINY, *args], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=mpi_env())


def wait_for_rows(run: Path, count: int, job: subprocess.Popen, timeout: float = 60) -> None:
    metrics, deadline = run / "metrics.csv", time.monotonic() + timeout
    while time.monotonic() < deadline and job.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) > count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{metrics} never got {count} rows")


def test_every_stop_has_its_status_and_exit_code():
    assert [(e.status, e.exit_code) for e in (Preempted, Diverged, Interrupted)] == \
        [("preempted", 3), ("diverged", 4), ("interrupted", 130)]


@pytest.mark.slow  # a compoptim-run process
def test_divergence_in_the_local_backend_is_one_line_and_status_diverged(tmp_path):
    """Before: status failed and Hydra's error handler with 28-65 lines."""
    done = subprocess.run([tool("compoptim-run"), *TINY, "optimizer.lr=1e30", "trainer.epochs=3",
                           "hydra.run.dir=run"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == Diverged.exit_code
    assert done.stderr.splitlines() == [done.stderr.strip()]  # one line
    assert done.stderr.startswith("compoptim-run: diverged: ") and "non-finite" in done.stderr
    assert summary(tmp_path / "run")["status"] == "diverged"
    assert leftovers(tmp_path / "run") == []


def test_divergence_through_the_api_is_a_user_error_and_status_diverged(tmp_path):
    with pytest.raises(UserError, match=r"^diverged: ") as caught:
        compoptim.run([*TINY, "optimizer.lr=1e30", "trainer.epochs=2"], run_dir=tmp_path / "run")
    assert isinstance(caught.value.__cause__, Diverged)
    assert summary(tmp_path / "run")["status"] == "diverged"


@pytest.mark.slow  # a compoptim-run process
def test_ctrl_c_stops_at_the_epoch_end_with_a_checkpoint_and_resumes(tmp_path):
    job = start(["trainer.epochs=300", "hydra.run.dir=run"], tmp_path)
    wait_for_rows(tmp_path / "run", 2, job)
    job.send_signal(signal.SIGINT)
    _, err = job.communicate(timeout=60)
    assert job.returncode == Interrupted.exit_code, err
    lines = err.strip().splitlines()
    assert "Traceback" not in err and lines[0].startswith("compoptim-run: interrupt: stopping at the end of this epoch")
    assert lines[-1].startswith("compoptim-run: interrupted: interrupted (Ctrl-C) after epoch ")
    record = summary(tmp_path / "run")
    assert record["status"] == "interrupted" and "resume=true" in record["error"]
    assert list((tmp_path / "run" / "checkpoints").glob("*/manifest.json"))
    stopped = int(record["error"].split("after epoch ")[1].split(";")[0])
    resumed = subprocess.run([tool("compoptim-run"), "resume=true", "hydra.run.dir=run",
                              f"trainer.epochs={stopped + 1}"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert summary(tmp_path / "run")["status"] == "finished" and summary(tmp_path / "run")["epochs"] == stopped + 1


@pytest.mark.slow  # a compoptim-run process
def test_a_second_ctrl_c_stops_at_once(tmp_path):
    job = start(["trainer.epochs=300", "trainer.batch_size=1", "hydra.run.dir=run"], tmp_path)
    wait_for_rows(tmp_path / "run", 1, job)
    job.send_signal(signal.SIGINT)
    time.sleep(0.3)
    job.send_signal(signal.SIGINT)
    _, err = job.communicate(timeout=60)
    assert job.returncode == Interrupted.exit_code, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("compoptim-run: interrupted: ")
    assert summary(tmp_path / "run")["status"] == "interrupted"
    assert leftovers(tmp_path / "run") == []


@pytest.mark.slow  # a compoptim-run process
def test_a_killed_run_is_marked_killed_by_its_watchdog(tmp_path):
    job = start(["trainer.epochs=300", "hydra.run.dir=run"], tmp_path)
    wait_for_rows(tmp_path / "run", 1, job)
    job.kill()
    job.wait(timeout=30)
    deadline = time.monotonic() + 10
    while summary(tmp_path / "run")["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.02)
    record = summary(tmp_path / "run")
    assert (record["status"], record["error"]) == ("killed", KILLED)
    assert len((tmp_path / "run" / "metrics.csv").read_text().splitlines()) >= 2  # still readable


@pytest.mark.slow  # a compoptim-run process
def test_a_run_that_ends_on_purpose_is_not_marked_killed(tmp_path):
    done = subprocess.run([tool("compoptim-run"), *TINY, "trainer.epochs=1", "hydra.run.dir=run"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    time.sleep(0.5)  # the watchdog has read the pipe by now
    assert summary(tmp_path / "run")["status"] == "finished"


class FullDisk:
    """``open`` for writing that fails like a full disk after ``room`` bytes."""

    def __init__(self, room: int) -> None:
        self.room = room

    def __call__(self, path, mode="r", *args, **kwargs):
        f = open(path, mode, *args, **kwargs)  # noqa: SIM115 - returned to the caller
        if "w" not in mode:
            return f
        write, disk = f.write, self

        def limited(data):
            if len(data) > disk.room:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            disk.room -= len(data)
            return write(data)

        f.write = limited
        return f


@pytest.mark.parametrize("write", ["text", "tensors"])
def test_a_full_disk_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path, monkeypatch, write):
    import torch

    target = tmp_path / ("summary.json" if write == "text" else "model.pt")
    target.write_bytes(b"before")
    monkeypatch.setattr("compoptim.train.writer.open", FullDisk(room=0), raising=False)
    with pytest.raises(UserError) as caught:
        if write == "text":
            atomic_write_text(target, "x" * 10_000)
        else:
            save_tensors({"w": torch.zeros(1000)}, target)
    assert str(caught.value) == (f"the disk is full: cannot write {target} (no space left on "
                                 f"{caught.value.args[0].split('no space left on ')[1].split(')')[0]}); free space, "
                                 f"or choose another directory with hydra.run.dir=PATH")
    assert target.read_bytes() == b"before" and leftovers(tmp_path) == []


def _small_tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


@pytest.mark.slow  # a compoptim-run process
def test_a_run_on_a_full_disk_is_one_line_and_keeps_its_files(tmp_path):
    """A real full disk: a 160 KiB tmpfs (needs root; skipped otherwise) that metrics.csv fills."""
    disk = tmp_path / "disk"
    if not _small_tmpfs(disk, "160k"):
        pytest.skip("cannot mount a small tmpfs here (not root): the full-disk run is covered by the fake above")
    try:
        done = subprocess.run([tool("compoptim-run"), *TINY, "trainer.epochs=300", f"hydra.run.dir={disk}/run"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 1
        assert done.stderr.startswith("compoptim-run: error: ") and done.stderr.count("\n") == 1, done.stderr
        assert f"the disk is full: cannot write {disk}/run/" in done.stderr
        assert f"no space left on {disk}" in done.stderr
        assert leftovers(disk) == []
        assert summary(disk / "run")["status"] == "failed"  # room for it once the temporary file went
        assert (disk / "run" / "metrics.csv").read_text().endswith("\n")  # whole rows only
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


@pytest.mark.slow  # a compoptim-run process
def test_a_sweep_runs_every_job_and_ends_with_one_line_naming_those_that_did_not_finish(tmp_path):
    """Before: the first diverged job ended the whole sweep (and later ones never ran)."""
    done = subprocess.run([tool("compoptim-run"), "-m", *TINY, "trainer.epochs=1", "optimizer.lr=1e30,0.05",
                           "hydra.sweep.dir=sweep"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("compoptim-run: error: 1 of 2 jobs did not finish: job 0 (") and "diverged: " in last
    assert "Traceback" not in done.stderr
    assert [summary(tmp_path / "sweep" / str(k))["status"] for k in (0, 1)] == ["diverged", "finished"]
