"""Combine orders: how a rule-based algorithm applies its local step Δ and the gossip G of x.

    adapt, then combine:   x_{t+1} = G(x_t - Δ_t)        (CHOCO-SGD, DSGD in ATC form)
    combine, then adapt:   x_{t+1} = G(x_t) - Δ_t        (D-PSGD, DIGing; Δ_t computed from x_t)
    overlapped:            the same as combine-then-adapt, with x_t's exchange posted before
                           the gradient is computed and finished in step()

``prox`` is the proximal step of a regulariser (l1), applied right after the local step.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import torch

from compoptim.comm.base import PendingMix
from compoptim.optim.gossip import ExactGossip, Gossip

Prox = Callable[[torch.Tensor], object]


class CombineOrder(ABC):
    def __init__(self, gossip: Gossip) -> None:
        self.gossip = gossip

    def begin(self, x: torch.Tensor, step: int) -> None:  # noqa: B027 - only overlap starts early
        """Called before the gradient of step ``step`` is computed (x is x_t)."""

    @abstractmethod
    def __call__(self, x: torch.Tensor, direction: torch.Tensor, scale: float, step: int, prox: Prox) -> None:
        """x <- x_{t+1} from x_t and Δ_t = scale * direction."""

    @staticmethod
    def adapt(x: torch.Tensor, direction: torch.Tensor, scale: float, prox: Prox) -> None:
        """The local update x -= Δ (one fused op) and the regulariser's proximal step."""
        x.add_(direction, alpha=-scale)
        prox(x)


class AdaptThenCombine(CombineOrder):
    def __call__(self, x: torch.Tensor, direction: torch.Tensor, scale: float, step: int, prox: Prox) -> None:
        self.adapt(x, direction, scale, prox)
        self.gossip(x, step)


class CombineThenAdapt(CombineOrder):
    def __call__(self, x: torch.Tensor, direction: torch.Tensor, scale: float, step: int, prox: Prox) -> None:
        self.gossip(x, step)  # Δ_t was computed from x_t, before this
        self.adapt(x, direction, scale, prox)


class OverlappedCombineThenAdapt(CombineThenAdapt):
    """Combine-then-adapt with exact gossip whose exchange of x_t travels during the
    backward pass: x_t does not change between ``begin`` and the step. Without a ``begin``
    (an optimizer driven by hand) it is plain combine-then-adapt."""

    def __init__(self, gossip: ExactGossip) -> None:
        super().__init__(gossip)
        self.exact = gossip
        self._pending: PendingMix | None = None

    def begin(self, x: torch.Tensor, step: int) -> None:
        self._pending = self.exact.start(x, step)

    def __call__(self, x: torch.Tensor, direction: torch.Tensor, scale: float, step: int, prox: Prox) -> None:
        if self._pending is None:
            super().__call__(x, direction, scale, step, prox)
            return
        self.exact.finish(self._pending, x)
        self._pending = None
        self.adapt(x, direction, scale, prox)
