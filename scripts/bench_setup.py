"""Shared by the step benchmarks: composing a run's config, an endless batch stream, and
timing blocks of steps of an in-process network."""

from __future__ import annotations

import time


def compose_config(overrides: list[str]):
    """The config ``compoptim-run <overrides>`` would run (a fixed run stamp)."""
    from compoptim.config import compose_config

    return compose_config(overrides, stamp="bench")


def endless(loader):
    """Batches of a ShardLoader, epoch after epoch."""
    while True:
        yield from loader.epoch()


def block_time(trainers, sources, steps: int) -> float:
    """Seconds per network step over one block: every node steps ``steps`` times on its
    batches from ``sources`` (the in-process backend's workers run them)."""
    from compoptim.comm import run_nodes

    start = time.perf_counter()
    run_nodes([t.comm for t in trainers],
              [lambda t=t, s=s: [t.train_step(*next(s)) for _ in range(steps)] for t, s in zip(trainers, sources)])
    return (time.perf_counter() - start) / steps
