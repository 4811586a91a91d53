"""How a sweep launched job by job (``hydra/launcher=mpi``, ``hydra/launcher=submitit_slurm_mpi``)
ends when some jobs failed: every job ran, and reading a failed job's return value (what
Hydra's sweepers do after the batch) ends the sweep with exit code 1 and one line naming
every failed job and why."""

# No `from __future__ import annotations`: Hydra loads plugin modules in a way under which
# dataclasses cannot resolve string annotations.
from collections.abc import Sequence

from hydra.core.utils import JobReturn, JobStatus


class JobFailed(SystemExit):
    """The sweep's end: exit code 1 and one line (a SystemExit, so Hydra passes it through
    instead of printing a stack trace)."""


def end_on_failures(results: Sequence[JobReturn]) -> list[JobReturn]:
    """``results``, each failed job's return value replaced by the sweep's one-line end (its
    own reason, a string, is the one it had)."""
    failed = [r for r in results if r.status == JobStatus.FAILED]
    if failed:
        reasons = "; ".join(str(r._return_value) for r in failed)
        message = f"compoptim-run: error: {len(failed)} of {len(results)} jobs failed: {reasons}"
        for r in failed:
            r.return_value = JobFailed(message)
    return list(results)
