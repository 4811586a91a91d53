"""backend=local: every node of the run in this one process, one thread each (no mpirun).

All Trainers are built first, in this thread, so a config mistake is one line before any
node starts; then the nodes train in parallel threads through one in-process hub. The
results are bit-identical to ``mpirun -np <nodes>`` with the same ``trainer.threads``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from compoptim.cli.world import AgreedExit, resolve_device, set_threads
from compoptim.comm import BACKENDS, local_network, run_nodes
from compoptim.errors import UserError
from compoptim.topology import build_topology
from compoptim.train import Trainer
from compoptim.train.writer import mark_failed

log = logging.getLogger("compoptim")


def run_local_job(cfg: dict[str, Any], run_dir: Path) -> float:
    """Train all ``backend.nodes`` nodes here; returns the final averaged-model accuracy."""
    try:
        backend = BACKENDS.build(cfg["backend"])
        nodes = backend.nodes
        if nodes < 1:
            raise UserError(f"backend.nodes must be >= 1 (the number of simulated nodes); got {nodes}")
        # One intra-op pool serves all node threads: the same per-node share an MPI run
        # with this many ranks on this machine would get, so the arithmetic is the same.
        set_threads(cfg["trainer"]["threads"], nodes)
        comms = local_network(build_topology(cfg["topology"], nodes))
        trainers = [Trainer(cfg, comm, run_dir, resolve_device(cfg["trainer"]["device"], comm.rank), log=log.info)
                    for comm in comms]
    except UserError as exc:
        print(f"compoptim-run: error: {exc}", file=sys.stderr, flush=True)
        mark_failed(run_dir, exc)
        raise AgreedExit(2) from None
    try:
        summaries = run_nodes(comms, [trainer.fit for trainer in trainers])
    except Exception as exc:
        node = getattr(exc, "node_rank", None)
        mark_failed(run_dir, exc, rank=node)
        raise UserError(f"node {node} of {nodes}: {type(exc).__name__}: {exc}") from exc
    return summaries[0]["test_acc"]
