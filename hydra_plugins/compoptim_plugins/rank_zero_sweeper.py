"""hydra/sweeper=rank_zero: Hydra's basic sweeper that runs every job, and writes the sweep-level
files from rank 0 only.

``mpirun -np N compoptim-run -m ...`` runs Hydra on every rank; each job is one collective run
in its own job directory (every rank composes the same jobs in the same order). Hydra's
basic sweeper would have every rank write ``multirun.yaml`` at once; here only rank 0 does.
Hydra's basic sweeper also stops at the first batch with a failed job, with that job's
traceback; here every job runs, and the sweep ends with one line naming each job that did
not finish and how it ended (exit code 1). compoptim-run selects this sweeper by itself.
"""

# No `from __future__ import annotations` here: Hydra loads plugin modules in a way under
# which dataclasses cannot resolve string annotations.
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf


@dataclass
class RankZeroSweeperConf:
    _target_: str = "hydra_plugins.compoptim_plugins.rank_zero_sweeper.RankZeroSweeper"
    max_batch_size: int | None = None
    params: Any = None


class RankZeroSweeper(BasicSweeper):
    """The basic sweep (all jobs in batches, each launched by the configured launcher), with
    ``multirun.yaml`` written by rank 0 only."""

    def sweep(self, arguments: list[str]) -> Any:
        from mpi4py import MPI

        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        self.overrides = self.split_arguments(parser.parse_overrides([*self._parse_config(), *arguments]),
                                              self.max_batch_size)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if MPI.COMM_WORLD.Get_rank() == 0:
            OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        returns, first, unfinished = [], 0, []
        while not self.is_done():
            batch = self.get_job_batch()
            self.validate_batch_is_legal(batch)
            results = self.launcher.launch(batch, initial_job_idx=first)
            for number, result in enumerate(results, start=first):
                if result.status == JobStatus.FAILED:
                    unfinished.append((number, result))
            first += len(batch)
            returns.append(results)
        if unfinished:
            _end_with_unfinished(unfinished, first, MPI.COMM_WORLD.Get_rank())
        return returns


def _end_with_unfinished(unfinished: list[tuple[int, JobReturn]], total: int, rank: int) -> None:
    """One line for the jobs that did not finish; exit code 1 on every rank alike."""
    from compoptim.errors import AgreedExit, JobNotFinished

    reasons = []
    for number, result in unfinished:
        error = result._return_value
        if isinstance(error, SystemExit):  # the MPI launcher's own summary of its failed jobs
            raise error
        why = str(error) if isinstance(error, JobNotFinished) else f"{type(error).__name__}: {error}"
        reasons.append(f"job {number} ({' '.join(result.overrides or [])}): {why}")
    if rank == 0:
        print(f"compoptim-run: error: {len(unfinished)} of {total} jobs did not finish: {'; '.join(reasons)}",
              file=sys.stderr, flush=True)
    raise AgreedExit(1)
