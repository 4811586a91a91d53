"""Shared by the step benchmarks: composing a run's config and an endless batch stream."""

from __future__ import annotations


def compose_config(overrides: list[str]):
    """The config ``compoptim-run <overrides>`` would run (a fixed run stamp)."""
    from compoptim.config import compose_config

    return compose_config(overrides, stamp="bench")


def endless(loader):
    """Batches of a ShardLoader, epoch after epoch."""
    while True:
        yield from loader.epoch()
