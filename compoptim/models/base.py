"""What every model of the zoo declares beyond ``nn.Module``, read by the trainer from the model."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class Part(nn.Module):
    """A block of a model's sequence that is no module of its own: ``fn(part, x)`` over some
    of the model's submodules and parameters, held here by reference (shared, not copied)."""

    def __init__(self, fn: Callable[..., torch.Tensor], **members: nn.Module | nn.Parameter) -> None:
        super().__init__()
        self._fn = fn
        for name, member in members.items():
            setattr(self, name, member)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fn(self, x)


class Model(nn.Module):
    """``bn_stats``: what each evaluation does with BatchNorm running statistics, which are
    buffers that gossip never mixes. ``averaged`` sets every node's to the average over the
    nodes; ``local`` keeps each node's own. Models without BatchNorm have none to average,
    so the class default is harmless; a model that has them makes it a setting (ResNet18).

    ``blocks()``: the model as a sequence of blocks, the units a pipeline split cuts between.
    Applying them in order is ``forward`` (tested for every model of the zoo). They share the
    model's parameters, and the model does not register them (its parameters, their order
    and its state dict stay its own)."""

    bn_stats: str = "averaged"

    def blocks(self) -> list[nn.Module]:
        if "_blocks" not in self.__dict__:
            object.__setattr__(self, "_blocks", self.make_blocks())  # not a submodule: no second registration
        return self._blocks

    def make_blocks(self) -> list[nn.Module]:
        """The block sequence; every model of the zoo states its own."""
        raise TypeError(f"{type(self).__name__} does not state its block sequence (make_blocks)")
