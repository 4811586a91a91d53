"""Preemption as SLURM does it: ``scancel --signal=TERM`` (what ``--signal=TERM@120`` sends
before the time limit) makes every rank checkpoint at its epoch's end and exit 3; the
documented script requeues itself and the requeued job resumes with ``resume=true``. Its
final metrics equal those of the same script run without interruption."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from tests.slurm.cluster import doc_script, epochs_written, wait_for

SETTINGS = ("trainer.epochs=6", "trainer.threads=1")


def rows(run: Path) -> list[dict[str, str]]:
    """metrics.csv without its timings."""
    with open(run / "metrics.csv") as f:
        return [{k: v for k, v in r.items() if "time" not in k} for r in csv.DictReader(f)]


def exit_codes(log: str) -> dict[int, int]:
    """task -> exit code, from srun's lines ``srun: error: vm: tasks 0-2,5: Exited with exit code 3``."""
    codes = {}
    for tasks, code in re.findall(r"tasks? ([\d,-]+): Exited with exit code (\d+)", log):
        for part in tasks.split(","):
            first, _, last = part.partition("-")
            codes.update({task: int(code) for task in range(int(first), int(last or first) + 1)})
    return codes


def test_sigterm_checkpoints_requeues_and_resumes_to_the_uninterrupted_result(cluster, tmp_path):
    script = doc_script(tmp_path)
    preempted = cluster.sbatch(script, *SETTINGS, options=("--overcommit",), cwd=tmp_path)
    uninterrupted = cluster.sbatch(script, *SETTINGS, options=("--overcommit",), cwd=tmp_path)
    run = tmp_path / "runs" / preempted
    wait_for(lambda: epochs_written(run) >= 1, f"job {preempted}'s first epoch")
    cluster.scontrol("show", "job", preempted)
    assert cluster.run("scancel", "--signal=TERM", preempted).returncode == 0

    # Every rank checkpoints and exits 3; the script puts the job back in the queue, where
    # SLURM holds it for the credential lifetime (cred_expire: 10 s on the test cluster, 120 s
    # by default; releasing it earlier makes its launch fail, "Job credential revoked").
    wait_for(lambda: cluster.state(preempted)[0] == "PENDING", f"job {preempted} requeued")
    summary = json.loads((run / "summary.json").read_text())
    (checkpoint,) = (run / "checkpoints").iterdir()
    stopped_at = int(checkpoint.name.removeprefix("epoch_"))
    assert summary["status"] == "preempted" and 1 <= stopped_at < 6
    assert summary["error"].startswith(f"stopped by a signal after epoch {stopped_at}; checkpoint saved")
    assert (checkpoint / "manifest.json").exists() and len(list(checkpoint.glob("rank_*.pt"))) == 4

    assert cluster.wait_end(preempted) == "COMPLETED"
    assert cluster.wait_end(uninterrupted) == "COMPLETED"
    log = (tmp_path / f"slurm-{preempted}.out").read_text()  # both attempts, appended
    assert exit_codes(log) == {task: 3 for task in range(4)}  # every rank, the exit code of `preempted`
    assert f"resumed from {run}/checkpoints/epoch_{stopped_at:05d} (epoch {stopped_at}, " in log
    assert log.count("done: test acc") == 1
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epochs"] == 6
    assert rows(run) == rows(tmp_path / "runs" / uninterrupted)
    assert [r["epoch"] for r in rows(run)] == [str(e) for e in range(7)]
