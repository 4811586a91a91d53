"""backend=local: every node of the run in this one process (no mpirun).

All Trainers are built first, in this thread, so a config mistake is one line before any
node starts, and so is a node count whose nodes would not fit in memory; then the nodes
train on a few worker threads through one in-process hub (``comm/local.py``). The
results are bit-identical to ``mpirun -np <nodes>`` with the same ``trainer.threads``.

``train_local`` raises ``UserError`` (what ``compoptim.run`` needs from Python);
``run_local_job`` is the CLI's use of it, which prints a build mistake and exits 2.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from compoptim.cli.world import resolve_device, set_threads
from compoptim.comm import BACKENDS, local_network, run_nodes
from compoptim.comm.local import LocalCommunicator
from compoptim.cores import available_memory, resident_memory
from compoptim.errors import AgreedExit, UserError
from compoptim.topology import build_topology
from compoptim.train import Trainer
from compoptim.train.node import SharedParts
from compoptim.train.signals import STOP_SIGNALS, Interrupted, RunStopped
from compoptim.train.writer import mark_failed

log = logging.getLogger("compoptim")


@dataclass
class LocalJob:
    """The nodes of one in-process run, built and ready to train."""

    comms: list[LocalCommunicator]
    trainers: list[Trainer]
    run_dir: Path

    def train(self) -> dict[str, Any]:
        """Train every node; node 0's summary. An expected stop (``RunStopped``: diverged,
        preempted, interrupted) is recorded with its status and raised as it is; any other
        failure on a node marks the run failed and is a UserError naming the node (the
        original exception is its cause). SIGINT, SIGTERM and SIGUSR1 stop the run while it
        trains (the previous handlers come back after)."""
        try:
            with STOP_SIGNALS.installed():
                return run_nodes(self.comms, [trainer.fit for trainer in self.trainers])[0]
        except (RunStopped, KeyboardInterrupt) as exc:
            agreed = getattr(exc, "agreed", False)  # every node stopped alike: no node to name
            mark_failed(self.run_dir, exc, rank=None if agreed else getattr(exc, "node_rank", None))
            raise
        except Exception as exc:
            node = getattr(exc, "node_rank", None)
            mark_failed(self.run_dir, exc, rank=node)
            if isinstance(exc, UserError):
                raise UserError(f"node {node} of {len(self.comms)}: {exc}") from exc
            raise UserError(f"node {node} of {len(self.comms)}: {type(exc).__name__}: {exc}") from exc


class MemoryProbe:
    """Refuses, after the first few nodes are built, a node count whose nodes cannot all fit.

    A node's memory is measured, not guessed: the growth of this process while nodes 1 to
    ``SAMPLE`` are built (node 0 also loads what all nodes share, the dataset and the
    imports): model, flat gradients, optimizer state, evaluation copies, its data shard and
    the Python objects around them. Two more model-sized buffers per node cover what the
    first steps allocate (send slots, work buffers); a batch's activations live on one node
    per worker at a time, so they do not grow with the node count.
    """

    SAMPLE = 4

    def __init__(self, nodes: int) -> None:
        self.nodes = nodes
        self.after_first = 0  # resident memory once node 0 is built (it is built first)

    def built(self, count: int, params: torch.Tensor) -> None:
        if count == 1:
            self.after_first = resident_memory()
        if count != self.SAMPLE or self.nodes <= self.SAMPLE:
            return
        per_node = max(0, resident_memory() - self.after_first) / (self.SAMPLE - 1) + \
            2 * params.numel() * params.element_size()
        available = available_memory()
        needed = per_node * (self.nodes - self.SAMPLE)
        if needed > available:
            fit = self.SAMPLE + int(available // per_node)
            raise UserError(f"backend.nodes={self.nodes} needs about {_size(needed)} more for its nodes "
                            f"({_size(per_node)} each: model, optimizer state, gossip and evaluation copies, data "
                            f"shard), but {_size(available)} are available: at most {fit} nodes of this "
                            f"configuration fit")


def _size(nbytes: float) -> str:
    return f"{nbytes / 2**30:,.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:,.1f} MiB"


def build_local_job(cfg: dict[str, Any], run_dir: Path, launch: Mapping[str, Any] | None = None) -> LocalJob:
    """Every node's Trainer for ``backend.nodes`` nodes (``launch``: how the run was started,
    for summary.json); a config mistake marks the run failed and is a UserError, raised
    before any node trains."""
    try:
        nodes = BACKENDS.build(cfg["backend"]).nodes
        if nodes < 1:
            raise UserError(f"backend.nodes must be >= 1 (the number of simulated nodes); got {nodes}")
        # One intra-op pool serves all node threads: the same per-node share an MPI run
        # with this many ranks on this machine would get, so the arithmetic is the same.
        set_threads(cfg["trainer"]["threads"], nodes)
        comms = local_network(build_topology(cfg["topology"], nodes))
        trainers, probe, shared = [], MemoryProbe(nodes), SharedParts()
        for comm in comms:
            trainers.append(Trainer(cfg, comm, run_dir, resolve_device(cfg["trainer"]["device"], comm.rank),
                                    log=log.info, launch=launch, shared=shared))
            probe.built(len(trainers), trainers[0].flat.params)
    except UserError as exc:
        mark_failed(run_dir, exc)
        raise
    return LocalJob(comms, trainers, run_dir)


def train_local(cfg: dict[str, Any], run_dir: Path, launch: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Build and train all ``backend.nodes`` nodes here; node 0's summary (summary.json).
    Any run that does not finish is a UserError (an expected stop's cause is its ``RunStopped``)."""
    job = build_local_job(cfg, run_dir, launch)
    try:
        return job.train()
    except RunStopped as exc:
        raise UserError(f"{exc.status}: {exc}") from exc


def run_local_job(cfg: dict[str, Any], run_dir: Path, launch: Mapping[str, Any] | None = None) -> float:
    """compoptim-run's local backend: the final averaged-model accuracy. A build mistake is
    one line and exit 2, like a bad command line; an expected stop is one line and its exit
    code (``signals.py``); any other failure keeps its traceback."""
    try:
        job = build_local_job(cfg, run_dir, launch)
    except UserError as exc:
        print(f"compoptim-run: error: {exc}", file=sys.stderr, flush=True)
        raise AgreedExit(2) from None
    try:
        return job.train()["test_acc"]
    except RunStopped as exc:
        print(f"compoptim-run: {exc.status}: {exc}", file=sys.stderr, flush=True)
        raise AgreedExit(exc.exit_code) from None
    except KeyboardInterrupt:
        print("compoptim-run: interrupted (Ctrl-C)", file=sys.stderr, flush=True)
        raise AgreedExit(Interrupted.exit_code) from None
    except UserError as exc:  # a node failed: a bug keeps its traceback, then the one line
        if exc.__cause__ is not None and not isinstance(exc.__cause__, UserError):
            traceback.print_exception(exc.__cause__, file=sys.stderr)
        print(f"compoptim-run: error: {exc}", file=sys.stderr, flush=True)
        raise AgreedExit(1) from None
