"""Placing pipeline stages on the ranks of a topology so activations travel one hop.

N ranks run N/S replicas of an S-stage pipeline. Replica r's stage s sits on rank
``replicas[r][s]``; its activations go to stage s + 1's rank and its gradients come back,
so the placement looks for N/S vertex-disjoint paths of S ranks through the topology's
graph (the union of its rounds, for a time-varying one): each path is one replica, its
consecutive ranks neighbours. A bounded depth-first search finds them on rings, tori,
hypercubes and the like; where none exists (a star with S > 2) or the search runs out of
budget, the placement falls back to rank order and says how many hops each stage link takes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from compoptim.errors import UserError
from compoptim.topology.base import Topology
from compoptim.topology.weights import mixing_matrix

_BUDGET = 200_000  # search steps before falling back to rank order


@dataclass(frozen=True)
class Placement:
    replicas: tuple[tuple[int, ...], ...]  # replicas[r][s]: the rank of replica r's stage s
    hops: tuple[int, ...]  # per stage link (replica r, stage s -> s + 1), in that order: graph distance

    @property
    def one_hop(self) -> bool:
        return all(h == 1 for h in self.hops)

    def stage_of(self, rank: int) -> tuple[int, int]:
        """(replica, stage) of ``rank``."""
        for r, ranks in enumerate(self.replicas):
            if rank in ranks:
                return r, ranks.index(rank)
        raise ValueError(f"rank {rank} holds no stage")


def _graph(topology: Topology) -> list[set[int]]:
    return [set().union(*(topology.neighbors(i, r) for r in range(topology.period))) for i in range(topology.n)]


def _distances(graph: list[set[int]], start: int) -> list[int]:
    far = len(graph)  # unreachable: more hops than any path has
    dist = [far] * len(graph)
    dist[start], queue = 0, deque([start])
    while queue:
        i = queue.popleft()
        for j in graph[i]:
            if dist[j] == far:
                dist[j] = dist[i] + 1
                queue.append(j)
    return dist


def _path_cover(graph: list[set[int]], length: int) -> list[list[int]] | None:
    """N/length disjoint paths of ``length`` ranks covering all ranks, or None."""
    n, free, paths, steps = len(graph), set(range(len(graph))), [], [0]

    def extend(path: list[int]) -> bool:
        steps[0] += 1
        if steps[0] > _BUDGET:
            return False
        if len(path) == length:
            paths.append(path)
            if not free or start_next():
                return True
            paths.pop()
            return False
        for j in sorted(graph[path[-1]] & free):
            free.discard(j)
            if extend([*path, j]):
                return True
            free.add(j)
        return False

    def start_next() -> bool:
        first = min(free)  # the lowest free rank starts the next path: each cover is found once
        free.discard(first)
        if extend([first]):
            return True
        free.add(first)
        return False

    return paths if n and start_next() else None


def place_stages(topology: Topology, stages: int) -> Placement:
    n = topology.n
    if stages < 1 or n % stages:
        raise UserError(f"parallel.stages={stages} must divide the {n} ranks (mpirun -np {n}): the ranks form "
                        f"ranks / stages replicas of the pipeline")
    graph = _graph(topology)
    paths = [[i] for i in range(n)] if stages == 1 else _path_cover(graph, stages)
    if paths is None:
        paths = [list(range(r * stages, (r + 1) * stages)) for r in range(n // stages)]
    hops = tuple(_distances(graph, p[s])[p[s + 1]] for p in paths for s in range(stages - 1))
    return Placement(tuple(tuple(int(r) for r in p) for p in paths), hops)


def replica_topology(topology: Topology, placement: Placement) -> Topology:
    """The graph each stage's replicas gossip over: replicas r and r' are neighbours when a
    rank of one is a neighbour of a rank of the other in ``topology``. It is connected
    whenever ``topology`` is (each replica's ranks are one set of the quotient), and its
    weights follow ``topology``'s rule (``auto``: uniform where the graph is regular, else
    Metropolis-Hastings). One stage: ``topology`` itself (the data-parallel run)."""
    if len(placement.replicas[0]) == 1:
        return topology
    graph = _graph(topology)
    owner = {rank: r for r, ranks in enumerate(placement.replicas) for rank in ranks}
    replicas = len(placement.replicas)
    adjacency = np.zeros((replicas, replicas), dtype=bool)
    for i, neighbours in enumerate(graph):
        for j in neighbours:
            if owner[i] != owner[j]:
                adjacency[owner[i], owner[j]] = True
    params = topology.params
    name = f"{topology.name} replicas"
    return Topology(name, (mixing_matrix(adjacency, params.get("weights", "auto"), params.get("lazy", 0.0)),),
                    params={"of": topology.name, "weights": params.get("weights", "auto"),
                            "lazy": params.get("lazy", 0.0)})
