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

GOSSIPS = ("auto", "exact", "choco", "allreduce", "local", "pushsum", "powergossip")


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


class PushSumGossip(Gossip):
    """Push-sum gossip (Kempe, Dobra & Gehrke 2003), the gossip of Stochastic Gradient Push
    (Assran, Loizou, Ballas & Rabbat 2019, Algorithm 1), for a column-stochastic W (any
    directed graph; a symmetric doubly stochastic W is column stochastic too).

    Node i keeps a numerator u_i and a push-sum weight w_i (u_i = v_i, w_i = 1 at the start);
    v_i = u_i / w_i is the de-biased value the model, its gradient and the evaluation see.
    The local step Δ (what the rule did to v since the last round) goes into the numerator,
    then numerator and weight travel together, one message [u_j, w_j] per in-neighbour:

        u_i <- u_i + (v_i - u_i / w_i)            (v_i = z_i - lr g(z_i): u_i - lr g(z_i))
        (u_i, w_i) <- sum_j w_ij (u_j, w_j)
        v_i <- u_i / w_i

    sum_i u_i and sum_i w_i = n are preserved by each round, so v_i tends to the average of
    the u's, not to a weighted average as plain mixing with a directed W would.
    """

    def __init__(self, comm: Communicator, compressor: Compressor, like: torch.Tensor) -> None:
        if not compressor.lossless:
            raise UserError(f"optimizer.gossip=pushsum sends exact messages (numerator and weight); "
                            f"compressor={compressor.name} is lossy: use compressor=none")
        self.comm, self.compressor = comm, compressor
        numel = like.numel()
        # Numerator and weight in one buffer: one message, mixed in place.
        self.message = torch.empty(numel + 1, dtype=like.dtype, device=like.device)
        self.numerator, self.weight = self.message[:numel], self.message[numel:]
        self.numerator.copy_(like.reshape(-1))
        self.weight.fill_(1.0)
        self._debiased = torch.empty_like(self.numerator)

    def __call__(self, v: torch.Tensor, step: int) -> None:
        z = torch.div(self.numerator, self.weight, out=self._debiased)  # the v of the last round
        self.numerator.add_(v).sub_(z)
        self.comm.neighbor_mix(self.compressor.encode(self.message), self.compressor, out=self.message, step=step)
        torch.div(self.numerator, self.weight, out=v)

    def state_dict(self) -> dict[str, Any]:
        return {"message": self.message.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.message.copy_(state["message"])


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


class EventTrigger:
    """SQuARM-SGD's event trigger (Singh, Data, George & Diggavi 2021, Algorithm 1): node i
    sends its compressed update at a communication round only when

        ||x_i^{t+1/2} - x̂_i^t||^2 > c · η_t^2

    (threshold ``c``, η_t the step size of this step, read from ``lr`` when the round comes).
    ``sent`` and ``rounds`` count what it decided, for the run's summary."""

    def __init__(self, c: float) -> None:
        self.c = c
        self.lr: Any = None  # a zero-argument callable giving η_t, set by the optimizer that owns it
        self.sent = 0
        self.rounds = 0

    def fires(self, diff: torch.Tensor) -> bool:
        lr = self.lr()
        self.rounds += 1
        fire = float(torch.linalg.vector_norm(diff, dtype=torch.float64)) ** 2 > self.c * lr * lr
        self.sent += int(fire)
        return fire

    def state_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "rounds": self.rounds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sent, self.rounds = int(state["sent"]), int(state["rounds"])


class CompressedCopy:
    """A public, compressed copy v̂ of a variable and the aggregate s = sum_j w_ij v̂_j of the
    neighbours' copies (self included), kept in step by sending only q = C(v - v̂):

        q_i = C(v_i - v̂_i);  v̂_i += q_i;  s_i += sum_j w_ij q_j

    One copy and one aggregate per variable: O(model) memory whatever the degree. v̂ and s
    start at 0 on every node, so every node's view of its neighbours stays consistent.
    ``s - v̂`` is then sum_j w_ij (v̂_j - v̂_i), the (W - I) v̂ term of CHOCO-type methods.
    """

    def __init__(self, comm: Communicator, compressor: Compressor, like: torch.Tensor,
                 trigger: EventTrigger | None = None) -> None:
        refuse_error_feedback(compressor, "CHOCO-type gossip")
        self.comm, self.compressor, self.trigger = comm, compressor, trigger
        self.v_hat = torch.zeros_like(like)
        self.s = torch.zeros_like(like)
        self._diff = torch.empty_like(like)

    def update(self, v: torch.Tensor, step: int) -> None:
        diff = torch.sub(v, self.v_hat, out=self._diff)
        if self.trigger is None:
            q = self.compressor.encode(diff)
            self.compressor.decode_add(q, self.v_hat, 1.0)
            self.comm.neighbor_mix(q, self.compressor, out=self.s, step=step, accumulate=True)
            return
        # Event-triggered: q = 0 (nothing sent, v̂ unchanged) unless v moved far enough from
        # v̂. The neighbours cannot know beforehand, so every node posts its receives for a
        # possibly empty message.
        q = self.compressor.encode(diff) if self.trigger.fires(diff) else None
        if q is not None:
            self.compressor.decode_add(q, self.v_hat, 1.0)
        nbytes = self.compressor.payload_nbytes(diff.numel())
        pending = self.comm.start_mix(q, step, nbytes=nbytes, skippable=True)
        self.comm.finish_mix(pending, self.compressor, out=self.s, accumulate=True)

    def add_consensus_(self, v: torch.Tensor, gamma: float) -> torch.Tensor:
        """v += gamma * (s - v̂) = gamma * sum_j w_ij (v̂_j - v̂_i)."""
        return v.add_(self.s, alpha=gamma).add_(self.v_hat, alpha=-gamma)

    def state_dict(self) -> dict[str, Any]:
        state = {"v_hat": self.v_hat.clone(), "s": self.s.clone(), "compressor": self.compressor.state_dict()}
        if self.trigger is not None:
            state["trigger"] = self.trigger.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.v_hat.copy_(state["v_hat"])
        self.s.copy_(state["s"])
        self.compressor.load_state_dict(state["compressor"])
        if self.trigger is not None:
            self.trigger.load_state_dict(state["trigger"])


class ChocoGossip(Gossip):
    """CHOCO-Gossip (Koloskova, Stich & Jaggi 2019, Algorithm 1; the gossip step of CHOCO-SGD,
    Algorithm 2): update the compressed copy with v, then

        v_i += gamma * sum_j w_ij (v̂_j - v̂_i)

    With the identity compressor and gamma = 1 this is exact gossip of v.
    """

    def __init__(self, comm: Communicator, compressor: Compressor, gamma: float, like: torch.Tensor,
                 trigger: EventTrigger | None = None) -> None:
        self.copy = CompressedCopy(comm, compressor, like, trigger)
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
