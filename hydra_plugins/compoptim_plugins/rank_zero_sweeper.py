"""hydra/sweeper=rank_zero: Hydra's basic sweeper, with the sweep-level files from rank 0 only.

``mpirun -np N compoptim-run -m ...`` runs Hydra on every rank; each job is one collective run
in its own job directory (every rank composes the same jobs in the same order). Hydra's
basic sweeper would have every rank write ``multirun.yaml`` at once; here only rank 0 does.
compoptim-run selects this sweeper by itself under mpirun.
"""

# No `from __future__ import annotations` here: Hydra loads plugin modules in a way under
# which dataclasses cannot resolve string annotations.
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
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
        returns, first = [], 0
        while not self.is_done():
            batch = self.get_job_batch()
            self.validate_batch_is_legal(batch)
            results = self.launcher.launch(batch, initial_job_idx=first)
            for result in results:
                _ = result.return_value  # raises if the job failed, as the basic sweeper does
            first += len(batch)
            returns.append(results)
        return returns
