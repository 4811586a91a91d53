"""Weight rules: from an undirected graph's adjacency to a symmetric doubly stochastic W."""

from __future__ import annotations

from enum import Enum

import numpy as np

from compoptim.errors import UserError

WEIGHT_RULES = ("auto", "uniform", "metropolis_hastings")


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


def metropolis_hastings(adjacency: np.ndarray) -> np.ndarray:
    """w_ij = 1/(1 + max(deg_i, deg_j)) on edges, w_ii = 1 - sum_j w_ij: valid for any undirected graph."""
    degrees = adjacency.sum(axis=1)
    w = adjacency / (1.0 + np.maximum.outer(degrees, degrees))
    np.fill_diagonal(w, 1.0 - w.sum(axis=1))
    return w


def mixing_matrix(adjacency: np.ndarray, weights: str | Enum = "auto", lazy: float = 0.0) -> np.ndarray:
    """W for ``adjacency`` by rule ``weights``, then made lazy: W <- lazy*I + (1 - lazy)*W.

    ``auto`` is uniform on a regular graph and Metropolis-Hastings otherwise. Laziness keeps
    W symmetric and doubly stochastic and moves every eigenvalue towards 1 (more self-trust).
    """
    rule = str(getattr(weights, "value", weights))
    if rule not in WEIGHT_RULES:
        raise UserError(f"topology.weights must be one of {', '.join(WEIGHT_RULES)}; got {rule}")
    if not 0.0 <= lazy < 1.0:
        raise UserError(f"topology.lazy must be >= 0 and < 1 (the extra self-weight); got {lazy:g}")
    if rule == "auto":
        rule = "uniform" if is_regular(adjacency) else "metropolis_hastings"
    w = uniform(adjacency) if rule == "uniform" else metropolis_hastings(adjacency)
    if lazy:
        w = lazy * np.eye(w.shape[0]) + (1.0 - lazy) * w
    return w


def is_regular(adjacency: np.ndarray) -> bool:
    """All nodes have the same degree."""
    return len(set(adjacency.sum(axis=1).tolist())) <= 1
