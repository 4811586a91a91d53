"""Shared by the sparsifiers: how many entries to keep, checked once."""

from __future__ import annotations

import math

from compoptim.errors import UserError


def check_keep(ratio: float, k: int | None) -> None:
    if k is None and not 0.0 < ratio <= 1.0:
        raise UserError(f"compressor.ratio must be > 0 and <= 1 (the fraction of entries kept); got {ratio:g}")
    if k is not None and k < 1:
        raise UserError(f"compressor.k must be >= 1 or null (use compressor.ratio); got {k}")


def keep_count(length: int, ratio: float, k: int | None) -> int:
    """Entries kept out of ``length``: ``k`` if given (at most length), else ceil(ratio*length), >= 1."""
    if k is not None:
        return min(k, length)
    return min(length, max(1, math.ceil(ratio * length - 1e-9)))
