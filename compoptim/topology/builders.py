"""Named topologies: each builder returns a validated Topology for every n it admits.

``TOPOLOGIES`` is the config group ``topology``: a builder's signature (after ``n``) is its
settings. Every graph builder takes the weight rule (``weights``, one of
``weights.WEIGHT_RULES``) and the laziness ``lazy`` (extra self-weight), see ``weights.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from compoptim.cores import memory_shortfall
from compoptim.errors import UserError
from compoptim.registry import Registry
from compoptim.topology import directed, graphs
from compoptim.topology.base import Topology, is_connected
from compoptim.topology.one_peer import one_peer_rounds
from compoptim.topology.weights import mixing_matrix

TOPOLOGIES = Registry("topology", context=("n",))
# Erdős–Rényi graphs are redrawn (from the same seeded generator) until connected, this often.
ER_MAX_DRAWS = 1000


def _static(name: str, adjacency: np.ndarray, weights: str, lazy: float, **params: Any) -> Topology:
    return Topology(name, (mixing_matrix(adjacency, weights, lazy),),
                    params={**params, "weights": weights, "lazy": lazy})


@TOPOLOGIES.register("ring")
def ring(n: int, weights: str = "auto", lazy: float = 0.0) -> Topology:
    """Cycle 0-1-...-(n-1)-0; uniform weights 1/3 (1/2 for n = 2)."""
    _check_n("ring", n)
    return _static("ring", graphs.cycle(n), weights, lazy)


@TOPOLOGIES.register("torus")
def torus(n: int, rows: int | None = None, cols: int | None = None, weights: str = "auto",
          lazy: float = 0.0) -> Topology:
    """2-D grid with wrap-around, rows x cols = n (unset sides chosen near-square; a prime n is 1 x n)."""
    _check_n("torus", n)
    rows, cols = graphs.torus_shape(n, rows, cols)
    return _static("torus", graphs.torus(n, rows, cols), weights, lazy, rows=rows, cols=cols)


@TOPOLOGIES.register("star")
def star(n: int, weights: str = "auto", lazy: float = 0.0) -> Topology:
    """Rank 0 is the hub, linked to every other node (irregular: Metropolis-Hastings weights under auto)."""
    _check_n("star", n)
    return _static("star", graphs.star(n), weights, lazy)


@TOPOLOGIES.register("complete")
def complete(n: int, weights: str = "auto", lazy: float = 0.0) -> Topology:
    """Every pair connected; W = 11^T/n, one round is exact averaging (with lazy = 0)."""
    _check_n("complete", n)
    return _static("complete", np.ones((n, n)) - np.eye(n), weights, lazy)


@TOPOLOGIES.register("hypercube")
def hypercube(n: int, weights: str = "auto", lazy: float = 0.0) -> Topology:
    """i ~ i XOR 2^k; n must be a power of two; degree log2(n)."""
    _check_n("hypercube", n)
    return _static("hypercube", graphs.hypercube(n), weights, lazy)


@TOPOLOGIES.register("exponential")
def exponential(n: int, weights: str = "auto", lazy: float = 0.0) -> Topology:
    """Static exponential graph, i ~ i +- 2^k mod n for every 2^k < n (Ying et al. 2021, undirected form); any n."""
    _check_n("exponential", n)
    return _static("exponential", graphs.exponential(n), weights, lazy)


@TOPOLOGIES.register("one_peer_exponential")
def one_peer_exponential(n: int, weights: str = "auto", lazy: float = 0.0) -> Topology:
    """Time-varying: one peer per round, cycling through the exponential graph's hops (see one_peer.py);
    for n a power of two, exact averaging after log2(n) rounds."""
    _check_n("one_peer_exponential", n)
    if weights == "uniform" and n & (n - 1):
        raise UserError(f"one_peer_exponential with n={n} (not a power of two) leaves some nodes unpaired in "
                        f"some rounds, so uniform weights do not apply; "
                        f"use topology.weights=auto or metropolis_hastings")
    matrices = tuple(mixing_matrix(a, weights, lazy) for a in one_peer_rounds(n))
    return Topology("one_peer_exponential", matrices, connected="period", params={"weights": weights, "lazy": lazy})


@TOPOLOGIES.register("random_matching")
def random_matching(n: int, period: int = 16, seed: int = 0, weights: str = "auto", lazy: float = 0.0) -> Topology:
    """Time-varying: each round a random matching, every node paired with one other (one node
    sits out when n is odd), W = (I + P)/2 on the pairs; a seeded sequence of ``period``
    rounds, repeated. Redrawn (same generator) until connected over the period, as for
    erdos_renyi; conf/topology/random_matching.yaml sets ``seed`` to the run's seed."""
    _check_n("random_matching", n)
    if period < 1:
        raise UserError(f"topology.period must be >= 1 (rounds of random matchings before the sequence repeats); "
                        f"got {period}")
    if seed < 0:
        raise UserError(f"topology.seed must be >= 0; got {seed}")
    if weights == "uniform" and n % 2:
        raise UserError(f"random_matching with odd n={n} leaves one node unpaired in every round, so uniform "
                        f"weights do not apply; use topology.weights=auto or metropolis_hastings")
    short = memory_shortfall(8 * n * n * period)
    if short:
        raise UserError(f"topology random_matching over n={n} nodes needs {period} {n}x{n} mixing matrices {short}; "
                        f"lower topology.period")
    rng = np.random.default_rng(seed)
    for draw in range(1, ER_MAX_DRAWS + 1):
        rounds = [graphs.random_matching(n, rng) for _ in range(period)]
        if n == 1 or is_connected(sum(rounds) > 0):
            matrices = tuple(mixing_matrix(a, weights, lazy) for a in rounds)
            return Topology("random_matching", matrices, connected="period",
                            params={"period": period, "seed": seed, "draws": draw, "weights": weights, "lazy": lazy})
    raise UserError(f"random_matching(n={n}, period={period}, seed={seed}) was disconnected over its period in all "
                    f"{ER_MAX_DRAWS} draws; raise topology.period (about log2(n) = {np.log2(n):.0f} rounds or more)")


@TOPOLOGIES.register("erdos_renyi")
def erdos_renyi(n: int, p: float = 0.5, seed: int = 0, weights: str = "auto", lazy: float = 0.0) -> Topology:
    """G(n, p) redrawn from a generator seeded with ``seed`` until connected (at most ER_MAX_DRAWS draws);
    conf/topology/erdos_renyi.yaml sets ``seed`` to the run's seed."""
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


@TOPOLOGIES.register("from_edges")
def from_edges(n: int, path: str = "", weights: str = "auto", lazy: float = 0.0) -> Topology:
    """A user graph read from an edge-list file: one 'i j' pair per line, nodes 0..n-1, '#' comments
    (``topology=from_edges topology.path=graph.txt``; the path is required)."""
    _check_n("from_edges", n)
    if not path:
        raise UserError("topology=from_edges needs topology.path=FILE (one 'i j' edge per line, nodes 0..n-1)")
    return _static("from_edges", graphs.read_edge_list(path, n), weights, lazy, path=str(path))


# --- directed graphs with push weights (push-sum methods: optimizer=sgp) ------------------------
def _directed(name: str, adjacency: np.ndarray, lazy: float, **params: Any) -> Topology:
    return Topology(name, (directed.push_weights(adjacency, lazy),), params={**params, "lazy": lazy}, directed=True)


@TOPOLOGIES.register("directed_ring")
def directed_ring(n: int, lazy: float = 0.0) -> Topology:
    """Directed cycle i -> i+1 (mod n): each node keeps 1/2 of its value and pushes 1/2 to its successor."""
    _check_n("directed_ring", n)
    return _directed("directed_ring", directed.directed_cycle(n), lazy)


@TOPOLOGIES.register("directed_exponential")
def directed_exponential(n: int, lazy: float = 0.0) -> Topology:
    """Directed exponential graph i -> i + 2^k (mod n) for every 2^k < n (Assran et al. 2019); push
    weights 1/(out-degree + 1)."""
    _check_n("directed_exponential", n)
    return _directed("directed_exponential", directed.directed_exponential(n), lazy)


@TOPOLOGIES.register("one_peer_directed_exponential")
def one_peer_directed_exponential(n: int, lazy: float = 0.0) -> Topology:
    """Time-varying, SGP's default: in round k node i pushes half its value to i + 2^(k mod log2 n)
    and keeps half; strongly connected over the period, and for n a power of two the period's
    product is exact averaging."""
    _check_n("one_peer_directed_exponential", n)
    matrices = tuple(directed.push_weights(a, lazy) for a in directed.one_peer_directed_rounds(n))
    return Topology("one_peer_directed_exponential", matrices, connected="period", params={"lazy": lazy},
                    directed=True)


@TOPOLOGIES.register("from_directed_edges")
def from_directed_edges(n: int, path: str = "", lazy: float = 0.0) -> Topology:
    """A user digraph read from an edge-list file: one 'i j' line per link i -> j (i sends to j),
    nodes 0..n-1, '#' comments; push weights 1/(out-degree + 1); must be strongly connected."""
    _check_n("from_directed_edges", n)
    if not path:
        raise UserError("topology=from_directed_edges needs topology.path=FILE (one 'i j' link i -> j per line, "
                        "nodes 0..n-1)")
    adjacency = directed.directed_from_pairs(n, graphs.read_edge_pairs(path, n))
    return _directed("from_directed_edges", adjacency, lazy, path=str(path))


@TOPOLOGIES.register("none")
@TOPOLOGIES.register("disconnected")
def disconnected(n: int) -> Topology:
    """W = I: no communication at all, every node trains on its own shard (a baseline);
    ``topology=none`` and ``topology=disconnected`` are the same."""
    _check_n("none", n)
    return Topology("none", (np.eye(n),), connected="never")


def build_topology(cfg: Mapping[str, Any], n: int) -> Topology:
    """The topology named by ``cfg['name']`` (with its settings) over n nodes."""
    return TOPOLOGIES.build(cfg, n)


def _check_n(name: str, n: int) -> None:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise UserError(f"topology {name} needs n >= 1 nodes; got n={n}")
    # Each mixing matrix is a dense n x n float64 array: refused here rather than by numpy's traceback.
    short = memory_shortfall(8 * n * n)
    if short:
        raise UserError(f"topology {name} over n={n} nodes needs {n}x{n} mixing matrices {short}")

