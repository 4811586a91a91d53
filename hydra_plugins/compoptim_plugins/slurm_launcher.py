"""hydra/launcher=submitit_slurm_mpi: one SLURM job per sweep point, its tasks the MPI ranks.

    compoptim-run -m hydra/launcher=submitit_slurm_mpi hydra.launcher.tasks_per_node=4 \\
        hydra.launcher.partition=gpu optimizer=sgd,adam seed=0,1,2

Needs ``pip install "compoptim[slurm]"`` (Hydra's submitit launcher). It submits the sweep as
one job array; ``srun --mpi=pmi2`` starts each job's ``nodes × tasks_per_node`` tasks, which
are the run's MPI ranks (MPICH learns its world from SLURM's PMI-2 server; Open MPI 5 wants
``hydra.launcher.srun_args=[--mpi=pmix]``). What this subclass adds, measured against a
running SLURM (tests/slurm/):

- in every task but rank 0, Hydra writes no ``.hydra/`` and no log file, as compoptim-run
  does under mpirun (otherwise every rank appends to the job's log);
- the sweep waits for every job and asks SLURM itself (``squeue``, no accounting database
  needed) how each one ended: a job that SLURM ended without a result (its ranks SIGKILLed,
  a node failure; a cancelled or timed-out run usually records ``preempted`` itself, having
  had SIGTERM first) is a failed job with SLURM's state and the run's own status, and a
  job that can never start (a time limit above the partition's) is cancelled and failed at
  once, instead of the sweep waiting for ever;
- failed jobs end the sweep as ``hydra/launcher=mpi`` does: all jobs run, then exit code 1
  and one line naming every failed job and why;
- SLURM warns the jobs with SIGTERM 120 s before their time limit (submitit's USR2, which
  the run does not handle, is replaced): every rank checkpoints at its epoch's end and the
  job ends ``preempted``, to be resumed with ``resume=true hydra.run.dir=<sweep dir>/<job>``.
"""

# No `from __future__ import annotations` here: Hydra loads plugin modules in a way under
# which dataclasses cannot resolve string annotations.
import json
import logging
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional  # noqa: UP035 - see above: no string annotations here

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
from omegaconf import OmegaConf

from hydra_plugins.compoptim_plugins.failures import JobFailed, end_on_failures

log = logging.getLogger(__name__)

POLL_S = 2.0  # how often the sweep asks SLURM about its jobs (one squeue call for all)
# SLURM states after which a job produces nothing more.
ENDED = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
         "TIMEOUT", "SPECIAL_EXIT", "REVOKED"}
# Reasons a pending job waits for ever (the request exceeds what the partition allows).
NEVER_STARTS = {"PartitionTimeLimit", "PartitionNodeLimit", "BadConstraints", "InvalidQOS", "InvalidAccount",
                "QOSMaxWallDurationPerJobLimit", "AssocMaxWallDurationPerJobLimit"}
GRACE_S = 10.0  # an ended job's rank 0 may still be writing its result file


@dataclass
class SlurmMPILauncherConf(SlurmQueueConf):
    """hydra/launcher=submitit_slurm_mpi: submitit's SLURM settings (``hydra.launcher.*``:
    partition, nodes, tasks_per_node, timeout_min, ...), with these defaults."""

    _target_: str = "hydra_plugins.compoptim_plugins.slurm_launcher.SlurmMPILauncher"
    tasks_per_node: int = 4  # MPI ranks per node
    cpus_per_task: Optional[int] = 2  # noqa: UP045 - cores per rank: its torch threads
    timeout_min: int = 120
    # srun's PMI for MPICH: most sites offer none unless asked (MpiDefault=none).
    srun_args: List[str] = field(default_factory=lambda: ["--mpi=pmi2"])  # noqa: UP006
    additional_parameters: Dict[str, Any] = field(default_factory=lambda: {"signal": "TERM@120"})  # noqa: UP006


def _rank() -> int:
    return int(os.environ.get("SLURM_PROCID", "0"))


class SlurmMPILauncher(SlurmLauncher):
    def __call__(self, sweep_overrides: list[str], job_dir_key: str, job_num: int, job_id: str,
                 singleton_state: dict) -> JobReturn:
        # Runs in every SLURM task of a job, one per MPI rank.
        from compoptim.cli.run import WORKER_OVERRIDES

        overrides = list(sweep_overrides) + (WORKER_OVERRIDES if _rank() else [])
        return super().__call__(overrides, job_dir_key, job_num, job_id, singleton_state)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from compoptim.train.writer import mark_killed  # torch: not for the command-line checks

        jobs = self._submit(job_overrides, initial_job_idx)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        todo = {job.job_id: (initial_job_idx + i, list(overrides), job)
                for i, (overrides, job) in enumerate(zip(job_overrides, jobs))}
        results: dict[int, JobReturn] = {}
        ended_at: dict[str, float] = {}
        while todo:
            states = slurm_states(list(todo))
            for job_id, (idx, overrides, job) in list(todo.items()):
                rank0 = job.task(0) if job.num_tasks > 1 else job
                state, reason = states.get(job_id, ("UNKNOWN", ""))
                if rank0.paths.result_pickle.exists():
                    results[idx] = _returned(idx, overrides, rank0)
                elif state == "PENDING" and reason in NEVER_STARTS:
                    subprocess.run(["scancel", job_id], capture_output=True, check=False)
                    results[idx] = _failed(idx, overrides, f"SLURM job {job_id} can never start ({reason}); cancelled")
                elif state in ENDED or state == "UNKNOWN":
                    # UNKNOWN: SLURM has forgotten the job (MinJobAge), so it ended too.
                    if time.monotonic() - ended_at.setdefault(job_id, time.monotonic()) < GRACE_S:
                        continue
                    ended = f"SLURM job {job_id} ended {state}{_why(reason)} without a result"
                    # Nothing of the job is left to say how its run ended (a node that went
                    # down takes the run's watchdog with it), so the sweep says it.
                    mark_killed(sweep_dir / str(idx), f"{ended} (seen by the sweep)")
                    results[idx] = _failed(idx, overrides, f"{ended}; the run's status: "
                                                           f"{_run_status(sweep_dir / str(idx))}")
                else:
                    continue
                del todo[job_id]
            if todo:
                time.sleep(POLL_S)
        return end_on_failures([results[i] for i in sorted(results)])

    def _submit(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[Any]:
        """The job array, submitted as Hydra's submitit launcher does (its ``launch`` without
        the wait, which trusts ``sacct`` and stops at the first failed job)."""
        import submitit

        assert self.config is not None
        init_keys = {"submitit_folder", "max_num_timeout"}
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, folder=self.params["submitit_folder"],
                                         slurm_max_num_timeout=self.params["max_num_timeout"])
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in base else f"{self._EXECUTOR}_{k}": v
                                      for k, v in self.params.items() if k not in init_keys})
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info(f"Submitting {len(job_overrides)} SLURM jobs into {sweep_dir}, each {self.params['nodes']} node(s) "
                 f"x {self.params['tasks_per_node']} ranks")
        params = []
        for i, overrides in enumerate(job_overrides):
            log.info(f"\t#{initial_job_idx + i} : {' '.join(filter_overrides(overrides))}")
            params.append((list(overrides), "hydra.sweep.dir", initial_job_idx + i, f"job_id_for_{initial_job_idx + i}",
                           Singleton.get_state()))
        try:
            jobs = executor.map_array(self, *zip(*params))
        except submitit.core.utils.FailedJobError as exc:  # sbatch refused the array (a limit, a partition)
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
            raise JobFailed(f"compoptim-run: error: SLURM refused the sweep's {len(params)} jobs: "
                            f"{lines[-1]}") from None
        log.info(f"SLURM jobs {', '.join(j.job_id for j in jobs)}: waiting for them "
                 f"(squeue shows them; scancel ends them)")
        return jobs


def slurm_states(job_ids: list[str]) -> dict[str, tuple[str, str]]:
    """job id ("12" or an array task "12_3") -> (SLURM state, reason). A job SLURM no longer
    knows (ended longer ago than MinJobAge) is ``UNKNOWN``; when squeue itself fails (the
    controller busy or restarting) every job is ``RUNNING``, to be asked about again."""
    proc = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T|%r", "-j", ",".join(job_ids)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        if "Invalid job id" not in proc.stderr:
            return {job_id: ("RUNNING", "") for job_id in job_ids}
        if len(job_ids) > 1:  # squeue refuses the whole list when one id is unknown: one by one
            return {k: v for job_id in job_ids for k, v in slurm_states([job_id]).items()}
    states = {job_id: ("UNKNOWN", "") for job_id in job_ids}
    for line in proc.stdout.splitlines():
        job_id, state, reason = [*line.split("|"), "", ""][:3]
        states[job_id.strip()] = (state.strip(), reason.strip())
    return states


def _why(reason: str) -> str:
    return f" ({reason})" if reason and reason != "None" else ""


def _run_status(job_dir: Path) -> str:
    """How the run itself says it ended (summary.json), or that it wrote none."""
    try:
        summary = json.loads((job_dir / "summary.json").read_text())
        return f"{summary['status']} ({job_dir}/summary.json)"
    except (OSError, ValueError, KeyError, TypeError):
        return f"no summary.json in {job_dir}"


def _returned(idx: int, overrides: list[str], rank0: Any) -> JobReturn:
    """Rank 0's JobReturn, or a failed one when its task raised outside the run."""
    try:
        ret = rank0.result()
    except Exception as exc:  # noqa: BLE001 - submitit re-raises the task's own error
        first = str(exc).strip().splitlines()
        return _failed(idx, overrides, first[-1] if first else type(exc).__name__)
    if ret.status == JobStatus.FAILED:
        log.error(f"job #{idx} ({' '.join(overrides)}) failed: {ret._return_value}")
        ret.return_value = f"job {idx} ({' '.join(overrides)}): {ret._return_value}"
    else:
        log.info(f"job #{idx} ({' '.join(overrides)}): finished, test acc {ret.return_value:.4f}")
    return ret


def _failed(idx: int, overrides: list[str], why: str) -> JobReturn:
    log.error(f"job #{idx} ({' '.join(overrides)}) failed: {why}")
    ret = JobReturn(overrides=overrides, task_name="compoptim")
    ret.status = JobStatus.FAILED
    ret.return_value = f"job {idx} ({' '.join(overrides)}): {why}"
    return ret
