"""Graph builders: each returns a validated Topology for every n it admits."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from compoptim.errors import UserError
from compoptim.registry import build_from_registry
from compoptim.topology.base import Topology


def uniform_weights(adjacency: np.ndarray) -> np.ndarray:
    """w_ij = 1/(deg+1) for neighbours and the self-weight; needs a regular graph.

    On an irregular graph this rule is not doubly stochastic (a pitfall seen in peer
    projects), so it refuses instead of returning a wrong W.
    """
    degrees = adjacency.sum(axis=1)
    if len(set(degrees.tolist())) > 1:
        raise UserError("uniform weights need a regular graph (all degrees equal)")
    d = int(degrees[0]) if len(degrees) else 0
    return (adjacency + np.eye(adjacency.shape[0])) / (d + 1)


def ring(n: int) -> Topology:
    """Cycle 0-1-...-(n-1)-0 with uniform weights 1/(deg+1) (1/3 for n >= 3)."""
    _check_n("ring", n)
    adjacency = np.zeros((n, n))
    for i in range(n):
        for j in ((i - 1) % n, (i + 1) % n):
            if j != i:
                adjacency[i, j] = 1.0
    return Topology("ring", (uniform_weights(adjacency),))


def complete(n: int) -> Topology:
    """Every pair connected, W = 11^T/n: one round is exact averaging."""
    _check_n("complete", n)
    return Topology("complete", (np.full((n, n), 1.0 / n),))


BUILDERS: dict[str, Callable[[int], Topology]] = {"ring": ring, "complete": complete}


def build_topology(cfg: Mapping[str, Any], n: int) -> Topology:
    """The topology named by ``cfg['name']`` (with its settings) over n nodes."""
    return build_from_registry("topology", BUILDERS, cfg, n)


def _check_n(name: str, n: int) -> None:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise UserError(f"topology {name} needs n >= 1 nodes; got n={n}")
