"""The Topology value: a mixing matrix W per round, validated at construction."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from compoptim.errors import UserError

# Row/column sums and symmetry are checked to this absolute tolerance.
_ATOL = 1e-10


@dataclass(frozen=True, eq=False)
class Topology:
    """A communication graph over ``n`` nodes with its mixing matrices.

    ``matrices`` holds one n x n matrix per round of the schedule; round ``step`` uses
    ``matrices[step % period]`` (a static graph has period 1). Every matrix must be
    symmetric, non-negative and doubly stochastic; a ``directed`` graph's matrices need only
    be non-negative and column stochastic (push weights: node j keeps w_jj of its value and
    pushes w_ij to its out-neighbour i, the shares summing to 1), as push-sum methods need.
    ``connected`` says where connectivity (strong connectivity, for a directed graph) is
    required: in every ``round`` (the default), only over a ``period`` (one-peer schedules),
    or ``never`` (the local-training baseline with W = I). ``params`` records how the graph
    was built (shape, seed, weight rule) for the run's summary.
    """

    name: str
    matrices: tuple[np.ndarray, ...]
    connected: str = "round"
    params: dict = field(default_factory=dict)
    directed: bool = False

    def __post_init__(self) -> None:
        if not self.matrices:
            raise UserError(f"topology {self.name}: needs at least one mixing matrix")
        frozen = []
        for w in self.matrices:
            w = np.array(w, dtype=np.float64)
            w.setflags(write=False)
            frozen.append(w)
        object.__setattr__(self, "matrices", tuple(frozen))
        _validate(self.name, self.matrices, self.connected, self.directed)

    @property
    def n(self) -> int:
        return self.matrices[0].shape[0]

    @property
    def period(self) -> int:
        return len(self.matrices)

    @property
    def is_time_varying(self) -> bool:
        return self.period > 1

    def matrix(self, step: int = 0) -> np.ndarray:
        return self.matrices[step % self.period]

    def neighbors(self, i: int, step: int = 0) -> list[int]:
        """Nodes j != i with w_ij > 0, ascending (the fixed order every backend sums in): the
        nodes i receives from (its in-neighbours, for a directed graph)."""
        row = self.matrix(step)[i]
        return [int(j) for j in np.flatnonzero(row) if j != i]

    def out_neighbors(self, i: int, step: int = 0) -> list[int]:
        """Nodes j != i with w_ji > 0, ascending: the nodes i sends to (its neighbours, when undirected)."""
        if not self.directed:
            return self.neighbors(i, step)
        column = self.matrix(step)[:, i]
        return [int(j) for j in np.flatnonzero(column) if j != i]

    def weights(self, i: int, step: int = 0) -> tuple[float, dict[int, float]]:
        """(w_ii, {j: w_ij}) for node i's (in-)neighbours in round ``step``."""
        row = self.matrix(step)[i]
        return float(row[i]), {j: float(row[j]) for j in self.neighbors(i, step)}

    def edges(self, step: int = 0) -> list[tuple[int, int, float]]:
        """(i, j, w_ij) for i < j with w_ij > 0 in round ``step``; for a directed graph every
        link as (source, destination, push weight)."""
        w = self.matrix(step)
        if self.directed:
            return [(int(j), int(i), float(w[i, j])) for i, j in zip(*np.nonzero(w)) if i != j]
        return [(int(i), int(j), float(w[i, j])) for i, j in zip(*np.nonzero(np.triu(w, k=1)))]

    @cached_property
    def spectral_gap(self) -> float:
        """1 - |lambda_2|: one minus the second largest eigenvalue modulus of W.

        For symmetric doubly stochastic W that modulus is ||W - J||_2 (J = 11^T/n). For a
        time-varying schedule it is the per-round rate over a period, 1 - ||W_{p-1}...W_0 - J||^(1/p),
        so a one-peer schedule that averages exactly over its period has gap 1.

        A directed (column-stochastic) W converges to pi 1^T (pi its Perron vector), not to J,
        so its rate is the second largest eigenvalue modulus of the period's product.
        """
        product = np.eye(self.n)
        for w in self.matrices:
            product = w @ product
        modulus = _second_eigenvalue_modulus(product) if self.directed else _norm_from_average(product)
        rate = modulus ** (1.0 / self.period)
        return float(min(1.0, max(0.0, 1.0 - rate)))

    @cached_property
    def distance_to_average(self) -> float:
        """||W - J||_2, the largest over the rounds: how far one round is from exact averaging."""
        return float(max(_norm_from_average(w) for w in self.matrices))

    def describe(self) -> dict:
        return {
            "name": self.name,
            "n": self.n,
            "period": self.period,
            "directed": self.directed,
            "spectral_gap": self.spectral_gap,
            "distance_to_average": self.distance_to_average,
            "max_degree": max(len(self.neighbors(i, r)) for i in range(self.n) for r in range(self.period)),
            **self.params,
        }

    def to_json(self) -> dict:
        """Everything needed to draw the graph: per round, the self-weights and the edges."""
        return {
            **self.describe(),
            "rounds": [{"self_weights": [float(v) for v in np.diag(w)], "edges": self.edges(r)}
                       for r, w in enumerate(self.matrices)],
        }


def _norm_from_average(w: np.ndarray) -> float:
    n = w.shape[0]
    return float(np.linalg.norm(w - np.full((n, n), 1.0 / n), ord=2))


def _second_eigenvalue_modulus(w: np.ndarray) -> float:
    moduli = np.sort(np.abs(np.linalg.eigvals(w)))
    return float(moduli[-2]) if len(moduli) > 1 else 0.0


CONNECTIVITY = ("round", "period", "never")


def _validate(name: str, matrices: tuple[np.ndarray, ...], connected: str, directed: bool = False) -> None:
    if connected not in CONNECTIVITY:
        raise ValueError(f"connected must be one of {CONNECTIVITY}; got {connected}")
    n = matrices[0].shape[0]
    for r, w in enumerate(matrices):
        where = f"topology {name} (round {r})" if len(matrices) > 1 else f"topology {name}"
        if w.shape != (n, n):
            raise UserError(f"{where}: mixing matrix must be {n}x{n}, got {w.shape}")
        if not np.all(np.isfinite(w)) or (w < -_ATOL).any():
            raise UserError(f"{where}: mixing weights must be finite and non-negative")
        rows, cols = w.sum(axis=1), w.sum(axis=0)
        if directed:
            if not np.allclose(cols, 1.0, atol=_ATOL, rtol=0):
                bad = int(np.argmax(np.abs(cols - 1.0)))
                raise UserError(f"{where}: push weights must be column stochastic (what node j keeps and pushes "
                                f"sums to 1); column {bad} sums to {cols[bad]:.6g}")
            continue
        if not np.allclose(w, w.T, atol=_ATOL, rtol=0):
            raise UserError(f"{where}: mixing matrix must be symmetric (w_ij = w_ji)")
        if not (np.allclose(rows, 1.0, atol=_ATOL, rtol=0) and np.allclose(cols, 1.0, atol=_ATOL, rtol=0)):
            bad = int(np.argmax(np.abs(rows - 1.0)))
            raise UserError(
                f"{where}: mixing matrix must be doubly stochastic; row {bad} sums to {rows[bad]:.6g}"
            )
    if connected == "never" or n == 1:
        return
    connects = is_strongly_connected if directed else is_connected
    kind = "strongly connected" if directed else "connected"
    if connected == "round":
        for r, w in enumerate(matrices):
            if not connects(w > 0):
                where = f" in round {r}" if len(matrices) > 1 else ""
                raise UserError(f"topology {name}: the graph over {n} nodes is not {kind}{where}; "
                                f"choose a {kind} graph (or topology=none for local training only)")
    elif not connects(sum((w > 0).astype(int) for w in matrices) > 0):
        raise UserError(f"topology {name}: the graph over {n} nodes is not {kind} over its period of "
                        f"{len(matrices)} rounds; choose a {kind} schedule")


def is_strongly_connected(adjacency: np.ndarray) -> bool:
    """Every node reaches every other along the directed non-zero entries: node 0 reaches all
    and all reach node 0 (reachability in the matrix and in its transpose)."""
    return is_connected(adjacency) and is_connected(adjacency.T)


def is_connected(adjacency: np.ndarray) -> bool:
    """Every node reachable from node 0 along non-zero entries."""
    n = adjacency.shape[0]
    seen = {0}
    frontier = [0]
    while frontier:
        i = frontier.pop()
        for j in np.flatnonzero(adjacency[i]):
            if j not in seen:
                seen.add(int(j))
                frontier.append(int(j))
    return len(seen) == n
