"""Weight rules: from an undirected graph's adjacency to a symmetric doubly stochastic W.

``WEIGHT_RULES`` names them as ``topology.weights`` does; ``mixing_matrix`` dispatches
through it, so a rule added here is a value every graph builder accepts.
"""

from __future__ import annotations

import numpy as np

from compoptim.errors import UserError
from compoptim.registry import Registry

WEIGHT_RULES = Registry("topology.weights", context=("adjacency",))


@WEIGHT_RULES.register("auto")
def auto(adjacency: np.ndarray) -> np.ndarray:
    """Uniform on a regular graph (the published weights of ring, torus, hypercube, ...),
    Metropolis-Hastings otherwise (star, random graphs), so every graph gets a valid W."""
    return uniform(adjacency) if is_regular(adjacency) else metropolis_hastings(adjacency)


@WEIGHT_RULES.register("uniform")
def uniform(adjacency: np.ndarray) -> np.ndarray:
    """w_ij = 1/(deg+1) for neighbours and for the self-weight; needs a regular graph.

    On an irregular graph this rule is not doubly stochastic (a pitfall seen in peer
    projects), so it refuses instead of returning a wrong W.
    """
    degrees = adjacency.sum(axis=1)
    if not is_regular(adjacency):
        raise UserError(
            f"uniform weights need a regular graph (all degrees equal); degrees here range from "
            f"{int(degrees.min())} to {int(degrees.max())}: use topology.weights=metropolis_hastings (or auto)"
        )
    d = int(degrees[0]) if len(degrees) else 0
    return (adjacency + np.eye(adjacency.shape[0])) / (d + 1)


@WEIGHT_RULES.register("metropolis_hastings")
def metropolis_hastings(adjacency: np.ndarray) -> np.ndarray:
    """w_ij = 1/(1 + max(deg_i, deg_j)) on edges, w_ii = 1 - sum_j w_ij: valid for any undirected graph."""
    degrees = adjacency.sum(axis=1)
    w = adjacency / (1.0 + np.maximum.outer(degrees, degrees))
    np.fill_diagonal(w, 1.0 - w.sum(axis=1))
    return w


def check_rule(weights: str) -> str:
    """``weights`` if it names a rule, else one line listing the rules."""
    if weights not in tuple(WEIGHT_RULES):  # Registry lookups of unknown names raise, not return False
        raise UserError(f"topology.weights must be one of {', '.join(WEIGHT_RULES)}; got {weights}")
    return weights


def mixing_matrix(adjacency: np.ndarray, weights: str = "auto", lazy: float = 0.0) -> np.ndarray:
    """W for ``adjacency`` by rule ``weights``, then made lazy: W <- lazy*I + (1 - lazy)*W.

    Laziness keeps W symmetric and doubly stochastic and moves every eigenvalue towards 1
    (more self-trust).
    """
    rule = WEIGHT_RULES[check_rule(weights)]
    if not 0.0 <= lazy < 1.0:
        raise UserError(f"topology.lazy must be >= 0 and < 1 (the extra self-weight); got {lazy:g}")
    w = rule.factory(adjacency)
    if lazy:
        w = lazy * np.eye(w.shape[0]) + (1.0 - lazy) * w
    return w


def is_regular(adjacency: np.ndarray) -> bool:
    """All nodes have the same degree."""
    return len(set(adjacency.sum(axis=1).tolist())) <= 1
