"""Gossip schemes: how one optimizer variable (x, a tracker, a moment) is mixed with the
neighbours' copies each step. Each scheme updates the variable in place and owns its state.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch

from compoptim.comm.base import Communicator, PendingMix
from compoptim.compress.base import Compressor
from compoptim.compress.wrappers import ErrorFeedback
from compoptim.errors import UserError

GOSSIPS = ("auto", "exact", "choco", "allreduce", "local")


class Gossip(ABC):
    #: True when the gossip never changes v (no neighbours in any round): nothing to overlap
    trivial = False

    @abstractmethod
    def __call__(self, v: torch.Tensor, step: int) -> None:
        """Mix v (this node's copy of the variable) in place for round ``step``."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state


class ExactGossip(Gossip):
    """v <- sum_j w_ij v_j (self included): the uncompressed gossip of D-PSGD."""

    def __init__(self, comm: Communicator, compressor: Compressor) -> None:
        self.comm, self.compressor = comm, compressor
        # No node has neighbours in any round (one node, or topology=none): W = I, nothing to do.
        topology = comm.topology
        self.trivial = all(not topology.neighbors(i, r) for i in range(topology.n) for r in range(topology.period))

    def __call__(self, v: torch.Tensor, step: int) -> None:
        if self.trivial:
            return
        # The exchange completes before the sum is written, so v can be its own output.
        self.comm.neighbor_mix(self.compressor.encode(v), self.compressor, out=v, step=step)

    def start(self, v: torch.Tensor, step: int) -> PendingMix:
        """Begin the exchange of v (which must not change until ``finish``)."""
        return self.comm.start_mix(self.compressor.encode(v), step)

    def finish(self, pending: PendingMix, v: torch.Tensor) -> None:
        self.comm.finish_mix(pending, self.compressor, out=v)


def refuse_error_feedback(compressor: Compressor, where: str) -> None:
    """The compressed-copy methods already feed the compression error back (what x̂ has not
    caught up with is sent next time); an error-feedback memory on top counts it twice and
    makes training diverge."""
    wrapped: Compressor | None = compressor
    while wrapped is not None and not isinstance(wrapped, ErrorFeedback):
        wrapped = getattr(wrapped, "inner", None)  # through Metered and other wrappers
    if wrapped is not None:
        raise UserError(f"compressor.error_feedback=true does not combine with {where}: its compressed copy "
                        f"already feeds the compression error back, and the memory would count it twice; "
                        f"set compressor.error_feedback=false")


class CompressedCopy:
    """A public, compressed copy v̂ of a variable and the aggregate s = sum_j w_ij v̂_j of the
    neighbours' copies (self included), kept in step by sending only q = C(v - v̂):

        q_i = C(v_i - v̂_i);  v̂_i += q_i;  s_i += sum_j w_ij q_j

    One copy and one aggregate per variable: O(model) memory whatever the degree. v̂ and s
    start at 0 on every node, so every node's view of its neighbours stays consistent.
    ``s - v̂`` is then sum_j w_ij (v̂_j - v̂_i), the (W - I) v̂ term of CHOCO-type methods.
    """

    def __init__(self, comm: Communicator, compressor: Compressor, like: torch.Tensor) -> None:
        refuse_error_feedback(compressor, "CHOCO-type gossip")
        self.comm, self.compressor = comm, compressor
        self.v_hat = torch.zeros_like(like)
        self.s = torch.zeros_like(like)
        self._diff = torch.empty_like(like)

    def update(self, v: torch.Tensor, step: int) -> None:
        q = self.compressor.encode(torch.sub(v, self.v_hat, out=self._diff))
        self.compressor.decode_add(q, self.v_hat, 1.0)
        self.comm.neighbor_mix(q, self.compressor, out=self.s, step=step, accumulate=True)

    def add_consensus_(self, v: torch.Tensor, gamma: float) -> torch.Tensor:
        """v += gamma * (s - v̂) = gamma * sum_j w_ij (v̂_j - v̂_i)."""
        return v.add_(self.s, alpha=gamma).add_(self.v_hat, alpha=-gamma)

    def state_dict(self) -> dict[str, Any]:
        return {"v_hat": self.v_hat.clone(), "s": self.s.clone(), "compressor": self.compressor.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.v_hat.copy_(state["v_hat"])
        self.s.copy_(state["s"])
        self.compressor.load_state_dict(state["compressor"])


class ChocoGossip(Gossip):
    """CHOCO-Gossip (Koloskova, Stich & Jaggi 2019, Algorithm 1; the gossip step of CHOCO-SGD,
    Algorithm 2): update the compressed copy with v, then

        v_i += gamma * sum_j w_ij (v̂_j - v̂_i)

    With the identity compressor and gamma = 1 this is exact gossip of v.
    """

    def __init__(self, comm: Communicator, compressor: Compressor, gamma: float, like: torch.Tensor) -> None:
        self.copy = CompressedCopy(comm, compressor, like)
        self.gamma = gamma

    def __call__(self, v: torch.Tensor, step: int) -> None:
        self.copy.update(v, step)
        self.copy.add_consensus_(v, self.gamma)

    def state_dict(self) -> dict[str, Any]:
        return self.copy.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.copy.load_state_dict(state)


class GlobalAverage(Gossip):
    """v <- (1/n) sum_j v_j over all nodes (an all-reduce): local SGD's averaging."""

    def __init__(self, comm: Communicator) -> None:
        self.comm = comm

    def __call__(self, v: torch.Tensor, step: int) -> None:
        self.comm.allreduce_(v, "mean", training=True)


class NoGossip(Gossip):
    """v is not communicated (the centralized baselines average the gradient instead)."""

    trivial = True

    def __call__(self, v: torch.Tensor, step: int) -> None:
        del v, step


class Periodic(Gossip):
    """``inner`` at steps t = H-1, 2H-1, ... only (period H); the identity in between, so
    nodes take H - 1 local steps between communications (local SGD, SQuARM-SGD)."""

    def __init__(self, inner: Gossip, period: int) -> None:
        self.inner, self.period = inner, period
        self.trivial = inner.trivial

    def __call__(self, v: torch.Tensor, step: int) -> None:
        if (step + 1) % self.period == 0:
            self.inner(v, step)

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state)
