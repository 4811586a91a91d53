"""Mini-batches of one node's shard, by indexing tensors (no per-sample DataLoader)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch


class ShardLoader:
    """Each epoch: shuffle the shard and cut it into batches of ``batch_size`` (the last shorter).

    Every step gossips, so all nodes must take the same number of steps per epoch, while
    shard sizes may differ by one. The step count therefore comes from the largest shard;
    a node whose shard runs out one step early gets an empty batch for that step (no
    gradient). Every sample is used exactly once per epoch on its node.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, shard: np.ndarray, batch_size: int,
                 largest_shard: int, seed: int, device: torch.device,
                 augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None) -> None:
        index = torch.from_numpy(shard)
        self.x = x[index].to(device)
        self.y = y[index].to(device)
        self.batch_size = batch_size
        self.steps_per_epoch = max(1, math.ceil(largest_shard / batch_size))
        self.generator = torch.Generator().manual_seed(seed)
        self.device = device
        self.augment = augment  # batched tensor ops on the device (e.g. random crop + flip)

    def __len__(self) -> int:
        return self.steps_per_epoch

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.y), generator=self.generator).to(self.device)
        for step in range(self.steps_per_epoch):
            idx = order[step * self.batch_size : (step + 1) * self.batch_size]
            xb = self.x[idx]
            yield (self.augment(xb, self.generator) if self.augment and len(idx) else xb), self.y[idx]
