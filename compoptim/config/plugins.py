"""compoptim's Hydra plugins, registered explicitly.

Hydra finds plugins by scanning the ``hydra_plugins`` namespace; an editable install's
import hooks hide it from that scan, so compoptim registers its own plugin classes and
their config options itself (harmless when the scan found them too).
"""

from __future__ import annotations

import importlib

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins


def register_plugins() -> None:
    # The scan re-executes Hydra's core plugin modules, so it must run before ours import
    # BasicSweeper: a subclass of the class object the scan replaces would be rejected.
    plugins = Plugins.instance()
    from hydra_plugins.compoptim_plugins.mpi_launcher import MPILauncher, MPILauncherConf
    from hydra_plugins.compoptim_plugins.rank_zero_sweeper import RankZeroSweeper, RankZeroSweeperConf

    cs = ConfigStore.instance()
    cs.store(group="hydra/launcher", name="mpi", node=MPILauncherConf, provider="compoptim")
    cs.store(group="hydra/sweeper", name="rank_zero", node=RankZeroSweeperConf, provider="compoptim")
    for cls in (MPILauncher, RankZeroSweeper):
        plugins.register(cls)
    if missing_package("hydra/launcher", "submitit_slurm_mpi") is None:
        from hydra_plugins.compoptim_plugins.slurm_launcher import SlurmMPILauncher, SlurmMPILauncherConf

        cs.store(group="hydra/launcher", name="submitit_slurm_mpi", node=SlurmMPILauncherConf, provider="compoptim")
        plugins.register(SlurmMPILauncher)


# Options whose plugin comes with an optional package: (group, option) -> (module, extra).
OPTIONAL_PLUGINS = {
    ("hydra/launcher", "submitit_slurm_mpi"): ("hydra_plugins.hydra_submitit_launcher", "compoptim[slurm]"),
}


def missing_package(group: str, option: str) -> str | None:
    """Why ``group=option`` cannot be used here (its optional package is not installed), or None."""
    if (group, option) not in OPTIONAL_PLUGINS:
        return None
    module, extra = OPTIONAL_PLUGINS[group, option]
    try:
        importlib.import_module(module)
    except ImportError as exc:
        return f"{group}={option} needs pip install \"{extra}\" ({exc})"
    return None
