"""The Topology value: a mixing matrix W per round, validated at construction."""

from __future__ import annotations

from dataclasses import dataclass
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
    symmetric, non-negative and doubly stochastic, and the union over a period connected.
    """

    name: str
    matrices: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if not self.matrices:
            raise UserError(f"topology {self.name}: needs at least one mixing matrix")
        frozen = []
        for w in self.matrices:
            w = np.array(w, dtype=np.float64)
            w.setflags(write=False)
            frozen.append(w)
        object.__setattr__(self, "matrices", tuple(frozen))
        _validate(self.name, self.matrices)

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
        """Nodes j != i with w_ij > 0, ascending (the fixed order every backend sums in)."""
        row = self.matrix(step)[i]
        return [j for j in np.flatnonzero(row) if j != i]

    def weights(self, i: int, step: int = 0) -> tuple[float, dict[int, float]]:
        """(w_ii, {j: w_ij}) for node i's neighbours in round ``step``."""
        row = self.matrix(step)[i]
        return float(row[i]), {int(j): float(row[j]) for j in self.neighbors(i, step)}

    @cached_property
    def spectral_gap(self) -> float:
        """1 - |lambda_2| of W (the second largest eigenvalue modulus); mean over a period."""
        gaps = []
        for w in self.matrices:
            moduli = np.sort(np.abs(np.linalg.eigvalsh(w)))[::-1]
            gaps.append(1.0 - (moduli[1] if len(moduli) > 1 else 0.0))
        return float(np.mean(gaps))

    @cached_property
    def distance_to_average(self) -> float:
        """||W - J||_2 with J = 11^T/n: how far one round is from exact averaging."""
        j = np.full((self.n, self.n), 1.0 / self.n)
        return float(max(np.linalg.norm(w - j, ord=2) for w in self.matrices))

    def describe(self) -> dict:
        return {
            "name": self.name,
            "n": self.n,
            "period": self.period,
            "spectral_gap": self.spectral_gap,
            "distance_to_average": self.distance_to_average,
        }


def _validate(name: str, matrices: tuple[np.ndarray, ...]) -> None:
    n = matrices[0].shape[0]
    for r, w in enumerate(matrices):
        where = f"topology {name} (round {r})" if len(matrices) > 1 else f"topology {name}"
        if w.shape != (n, n):
            raise UserError(f"{where}: mixing matrix must be {n}x{n}, got {w.shape}")
        if not np.all(np.isfinite(w)) or (w < -_ATOL).any():
            raise UserError(f"{where}: mixing weights must be finite and non-negative")
        if not np.allclose(w, w.T, atol=_ATOL, rtol=0):
            raise UserError(f"{where}: mixing matrix must be symmetric (w_ij = w_ji)")
        rows, cols = w.sum(axis=1), w.sum(axis=0)
        if not (np.allclose(rows, 1.0, atol=_ATOL, rtol=0) and np.allclose(cols, 1.0, atol=_ATOL, rtol=0)):
            bad = int(np.argmax(np.abs(rows - 1.0)))
            raise UserError(
                f"{where}: mixing matrix must be doubly stochastic; row {bad} sums to {rows[bad]:.6g}"
            )
    union = sum((w > 0).astype(int) for w in matrices)
    if n > 1 and not _is_connected(union > 0):
        raise UserError(
            f"topology {name}: graph over {n} nodes is not connected; choose a connected graph"
        )


def _is_connected(adjacency: np.ndarray) -> bool:
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
