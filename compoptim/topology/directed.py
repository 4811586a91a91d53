"""Directed graphs and their push weights (column-stochastic W), for push-sum methods.

A directed adjacency ``a`` has a[i, j] = 1 when node i sends to node j. Push weights give
each node an equal share of its value for itself and for every out-neighbour: node i keeps
1/(d_i + 1) and pushes 1/(d_i + 1) to each of its d_i out-neighbours, so W[j, i] = 1/(d_i + 1)
and every column of W sums to 1 (rows need not: that is the bias push-sum corrects). This
is the weighting of Stochastic Gradient Push (Assran et al. 2019) and of push-sum gossip
(Kempe, Dobra & Gehrke 2003); it needs no knowledge of the receivers' degrees.
"""

from __future__ import annotations

import numpy as np

from compoptim.errors import UserError
from compoptim.topology.graphs import hops


def directed_from_pairs(n: int, pairs) -> np.ndarray:
    """Adjacency of the directed graph with the links i -> j of ``pairs``; self-links are dropped."""
    a = np.zeros((n, n))
    for i, j in pairs:
        if i != j:
            a[i, j] = 1.0
    return a


def directed_cycle(n: int) -> np.ndarray:
    """i -> i + 1 (mod n)."""
    return directed_from_pairs(n, ((i, (i + 1) % n) for i in range(n)))


def directed_exponential(n: int) -> np.ndarray:
    """i -> i + 2^k (mod n) for every 2^k < n: out-degree ceil(log2 n)."""
    return directed_from_pairs(n, ((i, (i + hop) % n) for i in range(n) for hop in hops(n)))


def one_peer_directed_rounds(n: int) -> list[np.ndarray]:
    """Round k: i -> i + 2^k (mod n), cycling through the hops of the directed exponential
    graph, one out-neighbour (and one in-neighbour) per node and round: SGP's default."""
    return [directed_from_pairs(n, ((i, (i + hop) % n) for i in range(n))) for hop in hops(n)] or [np.zeros((n, n))]


def push_weights(adjacency: np.ndarray, lazy: float = 0.0) -> np.ndarray:
    """Column-stochastic W with W[j, i] = 1/(d_i + 1) for each link i -> j and W[i, i] = 1/(d_i + 1),
    then made lazy: W <- lazy*I + (1 - lazy)*W (lazy keeps it column stochastic)."""
    if not 0.0 <= lazy < 1.0:
        raise UserError(f"topology.lazy must be >= 0 and < 1 (the extra self-weight); got {lazy:g}")
    share = 1.0 / (adjacency.sum(axis=1) + 1.0)  # node i's share, for itself and each out-neighbour
    w = adjacency.T * share[None, :]
    np.fill_diagonal(w, share)
    if lazy:
        w = lazy * np.eye(w.shape[0]) + (1.0 - lazy) * w
    return w
