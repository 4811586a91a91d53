"""Threads per rank: each rank's share of the cores, never more threads than cores by default."""

import os

import pytest

from compoptim.comm import local_network
from compoptim.cores import default_threads
from compoptim.topology import ring


@pytest.mark.parametrize("cores, allowed, ranks, expected", [
    (16, 16, 4, 4),   # a rank per 4 cores
    (16, 16, 3, 5),   # 3 x 5 = 15 <= 16
    (2, 2, 4, 1),     # oversubscribed ranks: one thread each, never 0
    (2, 2, 1, 2),     # one rank takes the machine
    (16, 3, 4, 3),    # the launcher bound this rank to 3 cores: that is its share
])
def test_default_threads_split_the_cores(monkeypatch, cores, allowed, ranks, expected):
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(allowed)))
    assert default_threads(ranks) == expected
    assert expected * (ranks if allowed == cores else 1) <= max(cores, ranks)


def test_in_process_nodes_compute_about_one_per_core(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(8)))
    monkeypatch.setattr("torch.get_num_threads", lambda: 2)
    comms = local_network(ring(16))
    assert comms[0]._hub.workers == 4  # 8 cores / 2 threads per node
    assert local_network(ring(16), workers=3)[0]._hub.workers == 3
    assert local_network(ring(2), workers=3)[0]._hub.workers == 2  # never more workers than nodes


def test_speed_settings_do_not_block_a_resume():
    """Threads, device and overlap change speed, not results: a checkpoint stays resumable
    across them; a setting that changes the arithmetic does not."""
    from compoptim.train.checkpoint import config_hash
    from tests.conftest import compose_config

    base = config_hash(compose_config())
    for override in ("trainer.threads=3", "optimizer.overlap=false", "trainer.checkpoint_every=2"):
        assert config_hash(compose_config(override)) == base, override
    assert config_hash(compose_config("optimizer.lr=0.5")) != base
