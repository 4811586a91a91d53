"""The tests' handle on the local SLURM cluster: submit, ask about and end jobs, and wait for
a state with a time limit (a job that never gets there fails the test instead of hanging it)."""

from __future__ import annotations

import csv
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hydra_plugins.compoptim_plugins.slurm_launcher import ENDED

DOCS = Path(__file__).parents[2] / "docs" / "scale.md"
MARK = "<!-- tests/slurm/test_sbatch_script.py runs this block as it is -->"
WAIT_S = 300  # longest wait for a job's state (a 4-rank run here takes well under a minute)


@dataclass
class Cluster:
    directory: Path
    env: dict[str, str]

    def run(self, *args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), cwd=cwd, env=self.env, capture_output=True, text=True, timeout=timeout,
                              check=False)

    def popen(self, *args: str, cwd: Path, log: Path) -> subprocess.Popen:
        with open(log, "w") as out:
            return subprocess.Popen(list(args), cwd=cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT, text=True)

    def sbatch(self, script: Path, *args: str, options: tuple[str, ...] = (), cwd: Path) -> str:
        """The id of the job ``sbatch [options] script args`` submits."""
        proc = self.run("sbatch", "--parsable", *options, str(script), *args, cwd=cwd)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip().split(";")[0]

    def state(self, job_id: str) -> tuple[str, str]:
        """(state, reason) of a job or array task, ("", "") where SLURM knows none."""
        proc = self.run("squeue", "-h", "-r", "-t", "all", "-o", "%T|%r", "-j", job_id)
        lines = proc.stdout.strip().splitlines() if proc.returncode == 0 else []
        if not lines:
            return "", ""
        state, reason = [*lines[0].split("|"), ""][:2]
        return state, reason

    def wait_state(self, job_id: str, states: set[str], timeout: float = WAIT_S) -> str:
        """Wait until the job is in one of ``states``; its state."""
        last: list[str] = [""]

        def reached() -> bool:
            last[0] = self.state(job_id)[0]
            return last[0] in states

        try:
            wait_for(reached, f"job {job_id} in {sorted(states)}", timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; it is {last[0] or 'unknown to SLURM'}") from None
        return last[0]

    def wait_end(self, job_id: str, timeout: float = WAIT_S) -> str:
        return self.wait_state(job_id, ENDED, timeout)

    def scontrol(self, *args: str) -> None:
        proc = self.run("scontrol", *args)
        assert proc.returncode == 0, proc.stderr

    def wait_idle(self, timeout: float = 60) -> None:
        wait_for(lambda: self.run("sinfo", "-h", "-o", "%t").stdout.strip() == "idle", "the node idle", timeout)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT_S, every: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(every)


def epochs_written(run_dir: Path) -> int:
    """Epochs in the run's metrics.csv so far (0 while it has none)."""
    try:
        with open(run_dir / "metrics.csv") as f:
            return max((int(r["epoch"]) for r in csv.DictReader(f)), default=0)
    except (OSError, ValueError, KeyError):
        return 0


def doc_script(directory: Path) -> Path:
    """The sbatch script of docs/scale.md (the fenced block after its marker), as a file."""
    text = DOCS.read_text()
    assert MARK in text, f"{DOCS} lost the marker {MARK}"
    block = text.split(MARK, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    script = directory / "job.sh"
    script.write_text(block)
    return script
