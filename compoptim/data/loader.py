"""Mini-batches of one node's shard, by indexing tensors (no per-sample DataLoader)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch


class ShardLoader:
    """Each epoch: shuffle the shard and cut it into exactly ``steps_per_epoch`` batches.

    All nodes must take the same number of steps (each step gossips), but shard sizes may
    differ by one; so every node uses the same step count, derived from the largest shard,
    and cuts its own shuffled shard into that many near-equal batches of at most
    ``batch_size``. Every sample is then used exactly once per epoch on every node.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, shard: np.ndarray, batch_size: int,
                 largest_shard: int, seed: int, device: torch.device) -> None:
        self.x = x[torch.from_numpy(shard)].to(device)
        self.y = y[torch.from_numpy(shard)].to(device)
        self.steps_per_epoch = max(1, math.ceil(largest_shard / batch_size))
        self.generator = torch.Generator().manual_seed(seed)
        self.device = device

    def __len__(self) -> int:
        return self.steps_per_epoch

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.y), generator=self.generator).to(self.device)
        for idx in torch.tensor_split(order, self.steps_per_epoch):
            yield self.x[idx], self.y[idx]
