"""hydra/launcher=mpi: a sweep started without mpirun runs each job as its own MPI job.

    compoptim-run -m hydra/launcher=mpi hydra.launcher.nprocs=4 hydra.launcher.max_parallel=2 \\
        optimizer=sgd,adam seed=0,1

Each job is ``<mpirun> <mpirun_args> -np <nprocs> <program> <job overrides>
hydra.run.dir=<sweep dir>/<job number>``, its output in ``launcher.log`` in the job's
directory. Up to ``max_parallel`` jobs run at once. A failed job does not stop the others;
the sweep ends with an error naming the failed jobs. A job's return value is its final
averaged-model test accuracy (from summary.json), which sweepers such as Optuna maximise.
"""

# No `from __future__ import annotations` here: Hydra loads plugin modules in a way under
# which dataclasses cannot resolve string annotations.
import json
import logging
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig

from compoptim.errors import UserError, check_range
from hydra_plugins.compoptim_plugins.failures import end_on_failures

log = logging.getLogger(__name__)


@dataclass
class MPILauncherConf:
    _target_: str = "hydra_plugins.compoptim_plugins.mpi_launcher.MPILauncher"
    nprocs: int = 4  # ranks per job
    mpirun: str = str(Path(sys.executable).with_name("mpirun"))  # the launcher of mpi4py's MPI
    mpirun_args: list[str] = field(default_factory=list)  # e.g. [--hostfile, hosts.txt]
    program: str = str(Path(sys.executable).with_name("compoptim-run"))
    max_parallel: int = 1  # jobs running at once
    timeout_s: float | None = None  # per job; None: no limit


def check_settings(nprocs: int, mpirun: str, program: str, max_parallel: int, timeout_s: float | None) -> None:
    """A UserError naming the first hydra.launcher setting no job could run with: checked by
    compoptim-run's command-line check before the sweep starts, and by the launcher itself."""
    for key, value in (("nprocs", nprocs), ("max_parallel", max_parallel)):
        if value < 1:
            raise UserError(f"hydra.launcher.{key} must be >= 1; got {value}")
    if timeout_s is not None:
        check_range("hydra.launcher.timeout_s", timeout_s, 0.0, low_open=True)
    for key, path in (("mpirun", mpirun), ("program", program)):
        if shutil.which(path) is None:
            raise UserError(f"hydra.launcher.{key}={path} is not an executable program (a path, or a name on "
                            f"PATH); set hydra.launcher.{key}=PATH")


class MPILauncher(Launcher):
    def __init__(self, nprocs: int = 4, mpirun: str = "mpirun", mpirun_args: Sequence[str] = (),
                 program: str = "compoptim-run", max_parallel: int = 1, timeout_s: float | None = None) -> None:
        super().__init__()
        check_settings(nprocs, mpirun, program, max_parallel, timeout_s)
        self.nprocs, self.mpirun, self.mpirun_args = nprocs, mpirun, list(mpirun_args)
        self.program, self.max_parallel, self.timeout_s = program, max_parallel, timeout_s
        self.config: DictConfig | None = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        self.config = config

    def command(self, overrides: Sequence[str], job_dir: Path) -> list[str]:
        return [self.mpirun, *self.mpirun_args, "-np", str(self.nprocs), self.program, *overrides,
                f"hydra.run.dir={job_dir}"]

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        assert self.config is not None
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        pending = list(enumerate(job_overrides, start=initial_job_idx))
        running: list[tuple[int, Sequence[str], Path, subprocess.Popen, float, Any]] = []
        results: dict[int, JobReturn] = {}
        log.info(f"Launching {len(pending)} jobs, {self.max_parallel} at a time, each on {self.nprocs} ranks, "
                 f"into {sweep_dir}")
        while pending or running:
            while pending and len(running) < self.max_parallel:
                idx, overrides = pending.pop(0)
                job_dir = sweep_dir / str(idx)
                job_dir.mkdir(parents=True, exist_ok=True)
                out = open(job_dir / "launcher.log", "w")  # noqa: SIM115 - closed when the job ends
                cmd = self.command(overrides, job_dir)
                log.info(f"\t#{idx} : {' '.join(filter_overrides(list(overrides)))}")
                out.write(shlex.join(cmd) + "\n")
                out.flush()
                proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
                running.append((idx, overrides, job_dir, proc, time.monotonic(), out))
            time.sleep(0.05)
            for job in list(running):
                idx, overrides, job_dir, proc, started, out = job
                timed_out = self.timeout_s is not None and time.monotonic() - started > self.timeout_s
                if proc.poll() is None and not timed_out:
                    continue
                if timed_out and proc.poll() is None:
                    proc.kill()
                    proc.wait()
                out.close()
                running.remove(job)
                results[idx] = self._job_return(idx, overrides, job_dir, proc.returncode, timed_out)
        return end_on_failures([results[i] for i in sorted(results)])

    def _job_return(self, idx: int, overrides: Sequence[str], job_dir: Path, code: int,
                    timed_out: bool) -> JobReturn:
        ret = JobReturn(overrides=list(overrides), working_dir=str(job_dir), task_name="compoptim")
        try:
            summary = json.loads((job_dir / "summary.json").read_text())
        except (OSError, ValueError):
            summary = {}
        if code == 0 and summary.get("status") == "finished":
            ret.status = JobStatus.COMPLETED
            ret.return_value = summary.get("test_acc")
            log.info(f"job #{idx} ({' '.join(overrides)}): finished, test acc {summary.get('test_acc'):.4f}, "
                     f"{summary.get('wall_time_s', 0.0):.1f} s -> {job_dir}")
            return ret
        lines = (job_dir / "launcher.log").read_text(errors="replace").strip().splitlines()
        why = "timed out" if timed_out else (summary.get("error") or (lines[-1] if lines else f"exit code {code}"))
        log.error(f"job #{idx} ({' '.join(overrides)}) failed: {why}")
        ret.status = JobStatus.FAILED
        ret.return_value = f"job {idx} ({' '.join(overrides)}): {why} (see {job_dir}/launcher.log)"
        return ret
