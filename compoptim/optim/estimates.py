"""Gradient estimates: the direction d_t a rule-based algorithm's local rule is fed.

Each estimate turns this node's stochastic gradient g_t into d_t and owns its state.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch

from compoptim.comm.base import Communicator
from compoptim.optim.gossip import Gossip


class GradientEstimate(ABC):
    @abstractmethod
    def __call__(self, g: torch.Tensor, step: int) -> torch.Tensor:
        """d_t for the gradient g_t (``g`` may be overwritten: it is the flat gradient buffer)."""

    def parts(self) -> dict[str, Any]:
        """Stateful pieces, by the names they are saved under in the optimizer's state_dict."""
        return {}

    def tracker(self) -> torch.Tensor | None:
        """The node's estimate of the global gradient, for a tracking estimate; else None."""
        return None


class RawGradient(GradientEstimate):
    """d_t = g_t."""

    def __call__(self, g: torch.Tensor, step: int) -> torch.Tensor:
        return g


class AllReducedGradient(GradientEstimate):
    """d_t = (1/n) sum_j g_t^j, an exact all-reduce every step: the centralized baseline."""

    def __init__(self, comm: Communicator) -> None:
        self.comm = comm

    def __call__(self, g: torch.Tensor, step: int) -> torch.Tensor:
        return self.comm.allreduce_(g, "mean", training=True)


class TrackedGradient(GradientEstimate):
    """Gradient tracking (Nedić, Olshevsky & Shi 2017, DIGing; Pu & Nedić 2021), y_{-1} = g_{-1} = 0:

        y_t = G(y_{t-1}) + g_t - g_{t-1}     (combine, then adapt: gossip before the correction)
        y_t = G(y_{t-1} + g_t - g_{t-1})     (adapt, then combine)

    d_t = y_t, so mean(y) = mean(g) at every step (to rounding): the nodes track the global
    gradient, and a fixed point is the exact global optimum.
    """

    def __init__(self, gossip: Gossip, gossip_first: bool, like: torch.Tensor) -> None:
        self.gossip, self.gossip_first = gossip, gossip_first
        self.y = torch.zeros_like(like)
        self.g_prev = torch.zeros_like(like)

    def __call__(self, g: torch.Tensor, step: int) -> torch.Tensor:
        if self.gossip_first:
            self.gossip(self.y, step)
        self.y.add_(g).sub_(self.g_prev)
        if not self.gossip_first:
            self.gossip(self.y, step)
        self.g_prev.copy_(g)
        return self.y

    def tracker(self) -> torch.Tensor:
        return self.y

    def parts(self) -> dict[str, Any]:
        return {"gossip_y": self.gossip, "y": self.y, "g_prev": self.g_prev}
