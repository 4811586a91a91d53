"""Multinomial logistic regression (or, with one output, linear least squares): a convex model."""

from __future__ import annotations

import math

import torch
from torch import nn

from compoptim.models.base import Model, Part


class LogReg(Model):
    """x (any shape) -> flatten -> one linear layer -> class scores (or one value)."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(math.prod(input_shape), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))

    def make_blocks(self) -> list[nn.Module]:
        return [Part(lambda p, x: p.linear(x.flatten(1)), linear=self.linear)]
