"""Named topologies: each builder returns a validated Topology for every n it admits.

Every graph builder takes the weight rule (``weights``: auto | uniform |
metropolis_hastings) and the laziness ``lazy`` (extra self-weight), see ``weights.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

import numpy as np

from compoptim.errors import UserError
from compoptim.registry import build_from_registry
from compoptim.topology import graphs
from compoptim.topology.base import Topology, is_connected
from compoptim.topology.one_peer import one_peer_rounds
from compoptim.topology.weights import mixing_matrix

Weights = str | Enum
# Erdős–Rényi graphs are redrawn (from the same seeded generator) until connected, this often.
ER_MAX_DRAWS = 1000


def _static(name: str, adjacency: np.ndarray, weights: Weights, lazy: float, **params: Any) -> Topology:
    rule = str(getattr(weights, "value", weights))
    return Topology(name, (mixing_matrix(adjacency, rule, lazy),),
                    params={**params, "weights": rule, "lazy": lazy})


def ring(n: int, weights: Weights = "auto", lazy: float = 0.0) -> Topology:
    """Cycle 0-1-...-(n-1)-0; uniform weights 1/3 (1/2 for n = 2)."""
    _check_n("ring", n)
    return _static("ring", graphs.cycle(n), weights, lazy)


def torus(n: int, rows: int | None = None, cols: int | None = None, weights: Weights = "auto",
          lazy: float = 0.0) -> Topology:
    """2-D grid with wrap-around, rows x cols = n (unset sides chosen near-square; a prime n is 1 x n)."""
    _check_n("torus", n)
    rows, cols = graphs.torus_shape(n, rows, cols)
    return _static("torus", graphs.torus(n, rows, cols), weights, lazy, rows=rows, cols=cols)


def star(n: int, weights: Weights = "auto", lazy: float = 0.0) -> Topology:
    """Hub 0 linked to every other node (irregular: Metropolis-Hastings weights under auto)."""
    _check_n("star", n)
    return _static("star", graphs.star(n), weights, lazy)


def complete(n: int, weights: Weights = "auto", lazy: float = 0.0) -> Topology:
    """Every pair connected; W = 11^T/n, one round is exact averaging (with lazy = 0)."""
    _check_n("complete", n)
    return _static("complete", np.ones((n, n)) - np.eye(n), weights, lazy)


def hypercube(n: int, weights: Weights = "auto", lazy: float = 0.0) -> Topology:
    """i ~ i XOR 2^k; n must be a power of two; degree log2(n)."""
    _check_n("hypercube", n)
    return _static("hypercube", graphs.hypercube(n), weights, lazy)


def exponential(n: int, weights: Weights = "auto", lazy: float = 0.0) -> Topology:
    """Static exponential graph, i ~ i +- 2^k mod n (Ying et al. 2021, undirected form); any n."""
    _check_n("exponential", n)
    return _static("exponential", graphs.exponential(n), weights, lazy)


def one_peer_exponential(n: int, weights: Weights = "auto", lazy: float = 0.0) -> Topology:
    """Time-varying: one peer per round, cycling through the exponential graph's hops (see one_peer.py)."""
    _check_n("one_peer_exponential", n)
    rule = str(getattr(weights, "value", weights))
    if rule == "uniform" and n & (n - 1):
        raise UserError(f"one_peer_exponential with n={n} (not a power of two) leaves some nodes unpaired in "
                        f"some rounds, so uniform weights do not apply; "
                        f"use topology.weights=auto or metropolis_hastings")
    matrices = tuple(mixing_matrix(a, rule, lazy) for a in one_peer_rounds(n))
    return Topology("one_peer_exponential", matrices, connected="period", params={"weights": rule, "lazy": lazy})


def erdos_renyi(n: int, p: float = 0.5, seed: int = 0, weights: Weights = "auto", lazy: float = 0.0) -> Topology:
    """G(n, p) redrawn from a generator seeded with ``seed`` until connected (at most ER_MAX_DRAWS draws)."""
    _check_n("erdos_renyi", n)
    if not 0.0 < p <= 1.0:
        raise UserError(f"topology.p must be > 0 and <= 1 (the edge probability); got {p:g}")
    if seed < 0:
        raise UserError(f"topology.seed must be >= 0; got {seed}")
    rng = np.random.default_rng(seed)
    for draw in range(1, ER_MAX_DRAWS + 1):
        adjacency = graphs.erdos_renyi(n, p, rng)
        if is_connected(adjacency > 0):
            return _static("erdos_renyi", adjacency, weights, lazy, p=p, seed=seed, draws=draw)
    raise UserError(f"erdos_renyi(n={n}, p={p:g}, seed={seed}) was disconnected in all {ER_MAX_DRAWS} draws; "
                    f"raise topology.p (connectivity needs p above about ln(n)/n = {np.log(n) / n:.2f})")


def from_edges(n: int, path: str = "", weights: Weights = "auto", lazy: float = 0.0) -> Topology:
    """A user graph read from an edge-list file (one 'i j' pair per line, nodes 0..n-1)."""
    _check_n("from_edges", n)
    if not path:
        raise UserError("topology=from_edges needs topology.path=FILE (one 'i j' edge per line, nodes 0..n-1)")
    return _static("from_edges", graphs.read_edge_list(path, n), weights, lazy, path=str(path))


def disconnected(n: int) -> Topology:
    """W = I: no communication at all, every node trains on its own shard (a baseline)."""
    _check_n("none", n)
    return Topology("none", (np.eye(n),), connected="never")


BUILDERS: dict[str, Callable[..., Topology]] = {
    "ring": ring,
    "torus": torus,
    "star": star,
    "complete": complete,
    "hypercube": hypercube,
    "exponential": exponential,
    "one_peer_exponential": one_peer_exponential,
    "erdos_renyi": erdos_renyi,
    "from_edges": from_edges,
    "none": disconnected,
    "disconnected": disconnected,
}


def build_topology(cfg: Mapping[str, Any], n: int) -> Topology:
    """The topology named by ``cfg['name']`` (with its settings) over n nodes."""
    return build_from_registry("topology", BUILDERS, cfg, n)


def _check_n(name: str, n: int) -> None:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise UserError(f"topology {name} needs n >= 1 nodes; got n={n}")

