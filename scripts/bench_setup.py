"""Shared by the step benchmarks: composing a run's config and an endless batch stream."""

from __future__ import annotations


def compose_config(overrides: list[str]):
    """The config ``compoptim-run <overrides>`` would run (schemas registered, a fixed run stamp)."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from compoptim.config import register_schemas

    register_schemas()
    OmegaConf.register_new_resolver("run_stamp", lambda: "bench", replace=True)
    with initialize_config_module("compoptim.conf", version_base="1.3"):
        return compose("config", overrides=overrides)


def endless(loader):
    """Batches of a ShardLoader, epoch after epoch."""
    while True:
        yield from loader.epoch()
