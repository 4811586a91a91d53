"""compoptim's Hydra plugins, registered explicitly.

Hydra finds plugins by scanning the ``hydra_plugins`` namespace; an editable install's
import hooks hide it from that scan, so compoptim registers its own plugin classes and
their config options itself (harmless when the scan found them too).
"""

from __future__ import annotations

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
