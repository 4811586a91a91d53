"""Composing the real run config, the one way every caller does it (the CLI's checks and
help, tests, scripts): schemas and plugins registered, compoptim's conf tree."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from hydra import compose, initialize_config_module
from omegaconf import DictConfig, OmegaConf

from compoptim.config.plugins import register_plugins
from compoptim.config.schema import CONFIG_MODULE, register_schemas


def normalize_overrides(overrides: Sequence[str]) -> list[str]:
    """``+experiment=NAME`` as ``experiment=NAME``: the primary config has an ``experiment:
    null`` default (so the plain form works), which Hydra's append form would clash with."""
    return [o[1:] if o.startswith("+experiment=") else o for o in overrides]


@contextmanager
def composer() -> Iterator[Callable[..., DictConfig]]:
    """``compose(overrides, hydra=False)`` -> the config, for as many compositions as needed
    in one Hydra context (``hydra=True`` includes Hydra's own settings)."""
    register_schemas()
    register_plugins()
    with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
        yield lambda overrides=(), hydra=False: compose("config", overrides=normalize_overrides(overrides),
                                                         return_hydra_config=hydra)


def compose_config(overrides: Sequence[str] = (), stamp: str = "compose") -> DictConfig:
    """The config ``compoptim-run <overrides>`` would run; the run directory's ``run_stamp``
    is ``stamp`` unless the caller registered one (the CLI does: rank 0's stamp)."""
    if not OmegaConf.has_resolver("run_stamp"):
        OmegaConf.register_new_resolver("run_stamp", lambda: stamp)
    with composer() as compose_:
        return compose_(overrides)
