"""Splits of the training set across nodes."""

from __future__ import annotations

import numpy as np


def iid_partition(num_samples: int, n: int, seed: int) -> list[np.ndarray]:
    """A random permutation cut into n nearly equal, disjoint shards (sizes differ by <= 1).

    Every sample belongs to exactly one node, for any n <= num_samples (odd n included).
    """
    if n > num_samples:
        raise ValueError(f"cannot split {num_samples} samples across {n} nodes")
    perm = np.random.default_rng(seed).permutation(num_samples)
    return [np.sort(s) for s in np.array_split(perm, n)]
