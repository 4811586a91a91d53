"""A fully connected network on flattened inputs."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn

from compoptim.errors import UserError
from compoptim.models.base import Model


class MLP(Model):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: Sequence[int] = (200, 200)) -> None:
        super().__init__()
        if any(int(h) < 1 for h in hidden):
            raise UserError(f"model.hidden widths must all be >= 1; got {list(hidden)}")
        widths = [math.prod(input_shape), *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in itertools.pairwise(widths):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def make_blocks(self) -> list[nn.Module]:
        # each linear layer with its activation (the flatten goes with the first)
        n = len(self.net)
        return [self.net[0:3], *(self.net[i : i + 2] for i in range(3, n - 1, 2)), self.net[n - 1 : n]]
