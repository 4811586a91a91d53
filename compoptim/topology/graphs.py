"""Undirected graphs as 0/1 adjacency matrices (no self-loops). Pure numpy, no weights."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from compoptim.errors import UserError


def from_pairs(n: int, pairs) -> np.ndarray:
    """Adjacency of the undirected graph with the given (i, j) edges; self-pairs are dropped."""
    a = np.zeros((n, n))
    for i, j in pairs:
        if i != j:
            a[i, j] = a[j, i] = 1.0
    return a


def cycle(n: int) -> np.ndarray:
    return from_pairs(n, ((i, (i + 1) % n) for i in range(n)))


def torus_shape(n: int, rows: int | None, cols: int | None) -> tuple[int, int]:
    """(rows, cols) with rows*cols = n; unset sides are chosen as close to square as possible."""
    for key, value in (("rows", rows), ("cols", cols)):
        if value is not None and value < 1:
            raise UserError(f"topology.{key} must be >= 1 or null (chosen); got {value}")
    if rows is None and cols is None:
        rows = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    if rows is None:
        rows = n // cols if n % cols == 0 else 0
    if cols is None:
        cols = n // rows if n % rows == 0 else 0
    if rows * cols != n:
        raise UserError(f"torus needs n = rows*cols; got n={n} with rows={rows or '?'}, cols={cols or '?'}: "
                        f"set topology.rows/cols to divisors of {n}, or null to choose")
    return rows, cols


def torus(n: int, rows: int, cols: int) -> np.ndarray:
    """Grid with wrap-around: node r*cols + c talks to (r +- 1, c) and (r, c +- 1) mod the shape."""
    def node(r: int, c: int) -> int:
        return (r % rows) * cols + (c % cols)

    return from_pairs(n, ((node(r, c), other) for r in range(rows) for c in range(cols)
                          for other in (node(r + 1, c), node(r, c + 1))))


def star(n: int) -> np.ndarray:
    """Node 0 is the hub, every other node a leaf."""
    return from_pairs(n, ((0, j) for j in range(1, n)))


def hypercube(n: int) -> np.ndarray:
    if n & (n - 1):
        raise UserError(f"hypercube needs n to be a power of two (1, 2, 4, 8, ...); got n={n}: "
                        f"use topology=exponential for any n")
    return from_pairs(n, ((i, i ^ (1 << k)) for i in range(n) for k in range(n.bit_length() - 1)))


def exponential(n: int) -> np.ndarray:
    """Static undirected exponential graph: i ~ i +- 2^k (mod n) for every 2^k < n."""
    return from_pairs(n, ((i, (i + hop) % n) for i in range(n) for hop in hops(n)))


def hops(n: int) -> list[int]:
    """1, 2, 4, ... below n: the offsets of the exponential graph."""
    return [1 << k for k in range(max(0, (n - 1).bit_length()))]


def erdos_renyi(n: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """Each of the n(n-1)/2 possible edges present independently with probability p."""
    upper = np.triu(rng.random((n, n)) < p, k=1).astype(float)
    return upper + upper.T


def read_edge_list(path: str | Path, n: int) -> np.ndarray:
    """The undirected graph of the edge-list file ``path`` (see ``read_edge_pairs``)."""
    return from_pairs(n, read_edge_pairs(path, n))


def read_edge_pairs(path: str | Path, n: int) -> list[tuple[int, int]]:
    """Edges 'i j' per line (spaces or a comma between; '#' starts a comment), nodes 0..n-1
    written in ASCII digits. The file is UTF-8 text (a byte-order mark is allowed); anything
    else is a UserError naming the file, the line and what is wrong with it."""
    path = Path(path)
    where = f"topology.path: the edge list {path}"
    if path.is_dir():
        raise UserError(f"{where} is a directory; give the path of the edge-list file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"topology.path: cannot read the edge list {path} ({exc.strerror or exc})") from None
    if b"\0" in data:
        line = data.count(b"\n", 0, data.index(b"\0")) + 1
        raise UserError(f"{where} is a binary file, not text (a NUL byte on line {line}); "
                        f"it needs one 'i j' edge per line")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UserError(f"{where} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
                        f"it needs one 'i j' edge per line") from None
    pairs = []
    for number, line in enumerate(text.split("\n"), 1):  # numbered as editors do (\r, \f are spaces)
        fields = line.split("#", 1)[0].replace(",", " ").split()
        if not fields:
            continue
        at = f"edge list {path}, line {number}"
        shown = _shorten(line.strip())
        if len(fields) != 2:
            extra = " (weights are not read: topology.weights sets them)" if len(fields) == 3 else ""
            raise UserError(f"{at}: expected two node numbers 'i j'; got {len(fields)} fields {shown}{extra}")
        bad = [f for f in fields if not _NODE.fullmatch(f)]
        if bad:
            raise UserError(f"{at}: expected two node numbers 'i j'; {_shorten(bad[0])} is not a whole number "
                            f"written in digits 0-9 (got {shown})")
        i, j = map(int, fields)
        if not (0 <= i < n and 0 <= j < n):
            raise UserError(f"{at}: edge ({i}, {j}) names a node outside 0..{n - 1} (the run has n={n} nodes)")
        if i == j:
            raise UserError(f"{at}: self-loop ({i}, {i}); self-weights come from the weight rule, list only edges")
        pairs.append((i, j))
    if not pairs and n > 1:
        what = "is empty" if not text.strip() else "has no edges (only comments and blank lines)"
        raise UserError(f"{where} {what}; it needs a connected graph over the {n} nodes, one 'i j' edge per line")
    return pairs


# A node number: ASCII digits only (str.isdigit also admits '١', '２' and '²', which int() reads or rejects).
_NODE = re.compile(r"-?[0-9]+", re.ASCII)


def _shorten(text: str, limit: int = 40) -> str:
    """``repr`` of ``text``, cut to about ``limit`` characters for a one-line message."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def random_matching(n: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random matching of ``n`` nodes (one node unmatched when n is odd): a random
    permutation cut into consecutive pairs."""
    order = rng.permutation(n)
    return from_pairs(n, ((int(order[k]), int(order[k + 1])) for k in range(0, n - 1, 2)))
