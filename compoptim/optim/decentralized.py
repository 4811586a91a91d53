"""Rule-based algorithms: a local rule + a gradient estimate + a combine order, and the
gossip of each communicated variable.

``Decentralized`` is the composition, with no flags; ``rule_based`` assembles it from the
flat settings a config gives (the one place those settings are checked against each other).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from compoptim.comm.base import Communicator
from compoptim.errors import UserError, check_range
from compoptim.optim.base import CompressorFactory, DecentralizedOptimizer, soft_threshold_
from compoptim.optim.combine import AdaptThenCombine, CombineOrder, CombineThenAdapt, OverlappedCombineThenAdapt
from compoptim.optim.estimates import AllReducedGradient, GradientEstimate, RawGradient, TrackedGradient
from compoptim.optim.flat import FlatParameters
from compoptim.optim.gossip import (
    GOSSIPS,
    ChocoGossip,
    EventTrigger,
    ExactGossip,
    GlobalAverage,
    Gossip,
    NoGossip,
    Periodic,
    PushSumGossip,
)
from compoptim.optim.powergossip import PowerGossip
from compoptim.optim.rules import LocalRule

ORDERS = ("atc", "cta")
# Compressor streams: separate random draws for each communicated variable.
STREAMS = {"x": 0, "y": 1, "m": 2, "v": 3, "u": 4}


class Decentralized(DecentralizedOptimizer):
    """Node i, step t, stochastic gradient g_t at x_t, local rule Δ (sgd, adam, ...):

        d_t = estimate(g_t)              raw g_t, tracked y_t, or the all-reduced mean
        (direction, scale) = Δ(x_t, d_t)
        x_{t+1} = combine(x_t, Δ_t)      G(x_t - Δ_t) or G(x_t) - Δ_t, then prox of l1·||x||_1
        G(m), G(v) ...                   the rule's moments listed in comm_set

    Each G is a gossip scheme (exact, CHOCO-compressed, global average, none), possibly
    periodic. References and the named compositions: ``algorithms.py``.
    """

    def __init__(self, flat: FlatParameters, comm: Communicator, compressors: CompressorFactory, lr: float,
                 name: str, rule: LocalRule, estimate: GradientEstimate, combine: CombineOrder,
                 moment_gossips: Mapping[str, Gossip] | None = None, l1: float = 0.0) -> None:
        super().__init__(flat, comm, compressors, lr)
        self.name, self.rule, self.estimate, self.combine = name, rule, estimate, combine
        self.moment_gossips = dict(moment_gossips or {})
        self.l1 = check_range("optimizer.l1", l1, 0.0)

    @property
    def overlap(self) -> bool:
        """x_t's exchange is posted before the gradient (the trainer then polls it from the backward pass)."""
        return isinstance(self.combine, OverlappedCombineThenAdapt)

    def begin_step(self) -> None:
        self.combine.begin(self.flat.params, self.t)

    def step(self, closure=None) -> None:
        x, t = self.flat.params, self.t
        direction = self.estimate(self.flat.grads, t)
        step_direction, scale = self.rule.step(x, direction, self.current_lr)
        self.combine(x, step_direction, scale, t, self._prox)
        for var, gossip in self.moment_gossips.items():
            gossip(self.rule.state(var), t)
        self.t += 1

    def tracker(self) -> torch.Tensor | None:
        return self.estimate.tracker()

    def _prox(self, x: torch.Tensor) -> None:
        soft_threshold_(x, self.current_lr * self.l1)

    def parts(self) -> dict[str, Any]:
        return {"rule": self.rule, "gossip_x": self.combine.gossip,
                **{f"gossip_{var}": g for var, g in self.moment_gossips.items()}, **self.estimate.parts()}


def rule_based(flat: FlatParameters, comm: Communicator, compressors: CompressorFactory, lr: float, name: str,
               rule: LocalRule, comm_set: Sequence[str] = ("x",), gossip: str = "auto", gamma: float = 1.0,
               gamma_y: float | None = None, order: str = "atc", period: int = 1, tracking: bool = False,
               l1: float = 0.0, overlap: bool | None = None, trigger: float = 0.0, rank: int = 1,
               seed: int = 0) -> Decentralized:
    """The composition the communication settings describe (each algorithm in
    ``algorithms.py`` gives its published values for them):

    - ``gossip``: exact (sum_j w_ij v_j), choco (CHOCO-compressed, consensus step ``gamma``,
      ``gamma_y`` for the tracker), local (exact averaging over all nodes), allreduce (no
      gossip: the gradient is all-reduced), pushsum (push-sum with a numerator and a weight,
      for directed graphs), powergossip (each edge's difference compressed to ``rank`` by
      warm-started power iteration, its factors drawn from ``seed``; consensus step
      ``gamma``), auto (exact, or choco with a compressor or a trigger);
    - ``comm_set``: x plus any of the rule's moments, gossiped alike;
    - ``order``: atc (adapt, then combine) or cta (combine, then adapt);
    - ``period`` H: communicate at steps H-1, 2H-1, ... only;
    - ``tracking``: gradient tracking (its own gossip of y);
    - ``overlap``: send x_t during the backward pass (cta, exact gossip, no tracking, period 1;
      None: wherever that holds and there is a neighbour);
    - ``l1``: the proximal step of l1·||x||_1 after the local step;
    - ``trigger`` c: with choco gossip, a node sends only when ||v - v̂||^2 > c·lr^2 (SQuARM-SGD's
      event trigger); 0 sends every round.
    """
    order = _choice("optimizer.order", order, ORDERS)
    gossip = _choice("optimizer.gossip", gossip, GOSSIPS)
    gamma = check_range("optimizer.gamma", gamma, 0.0, 1.0, low_open=True, high_open=False)
    gamma_y = gamma if gamma_y is None else check_range("optimizer.gamma_y", gamma_y, 0.0, 1.0, low_open=True,
                                                        high_open=False)
    if period < 1:
        raise UserError(f"optimizer.period must be >= 1 (steps between averaging); got {period}")
    comm_set = list(comm_set)
    allowed = ["x", *rule.moments]
    if "x" not in comm_set or any(v not in allowed for v in comm_set) or len(set(comm_set)) != len(comm_set):
        raise UserError(f"optimizer.comm_set must list x and any of {', '.join(rule.moments) or 'nothing else'} "
                        f"for {name}; got {comm_set}")
    first = compressors(0)
    trigger = check_range("optimizer.trigger", trigger, 0.0)
    if gossip == "auto":  # a trigger decides when to send CHOCO's compressed updates: choco then too
        gossip = "exact" if first.lossless and not trigger else "choco"
    if gossip == "exact" and not first.lossless:
        raise UserError(f"optimizer.gossip=exact sends uncompressed vectors, but compressor={first.name}; "
                        f"use optimizer.gossip=choco (or auto) to gossip compressed")
    if gossip in ("allreduce", "local") and (tracking or comm_set != ["x"] or not first.lossless):
        raise UserError(f"optimizer.gossip={gossip} averages over all nodes: it takes no tracking, no "
                        f"comm_set beyond x and no compressor")
    if gossip == "allreduce" and period != 1:
        raise UserError("optimizer.gossip=allreduce averages the gradient every step; use gossip=local "
                        "with optimizer.period for periodic averaging")
    if gossip == "pushsum" and (order != "atc" or tracking or comm_set != ["x"]):
        raise UserError("optimizer.gossip=pushsum (SGP) takes the local step into its numerator and then mixes: "
                        "it needs optimizer.order=atc, no tracking and no comm_set beyond x")
    if gossip == "powergossip" and (tracking or comm_set != ["x"] or not first.lossless):
        raise UserError(f"optimizer.gossip=powergossip compresses each edge's model difference by itself: it takes "
                        f"no tracking, no comm_set beyond x and compressor=none (got compressor={first.name})")
    if trigger and gossip != "choco":
        raise UserError(f"optimizer.trigger sends a compressed update only when it is large, which needs CHOCO "
                        f"gossip (optimizer.gossip=choco, or a compressor); got optimizer.gossip={gossip}")
    possible = order == "cta" and gossip == "exact" and not tracking and period == 1
    if overlap and not possible:
        raise UserError("optimizer.overlap sends x_t while the gradient is computed, which needs "
                        "optimizer.order=cta, optimizer.gossip=exact, no tracking and period 1")

    x = flat.params
    triggers: list[EventTrigger] = []

    def scheme(var: str) -> Gossip:
        if gossip == "local":
            made: Gossip = GlobalAverage(comm)
        elif gossip == "exact":
            made = ExactGossip(comm, compressors(STREAMS[var]))
        elif gossip == "pushsum":
            made = PushSumGossip(comm, compressors(STREAMS[var]), x)
        elif gossip == "powergossip":
            made = PowerGossip(comm, flat.shapes, x, rank, gamma, seed)
        else:
            event = EventTrigger(trigger) if trigger else None
            triggers.extend([event] if event else [])
            made = ChocoGossip(comm, compressors(STREAMS[var]), gamma_y if var == "y" else gamma, x, event)
        return Periodic(made, period) if period > 1 else made

    estimate: GradientEstimate = RawGradient()
    if gossip == "allreduce":
        estimate, x_gossip = AllReducedGradient(comm), NoGossip()
    else:
        x_gossip = scheme("x")
        if tracking:
            estimate = TrackedGradient(scheme("y"), gossip_first=order == "cta", like=x)
    moments = {var: scheme(var) for var in comm_set if var != "x"}
    # None (the default): overlap whenever the form allows and there is someone to talk to.
    if (possible and not x_gossip.trivial) if overlap is None else overlap:
        combine: CombineOrder = OverlappedCombineThenAdapt(x_gossip)
    else:
        combine = CombineThenAdapt(x_gossip) if order == "cta" else AdaptThenCombine(x_gossip)
    optimizer = Decentralized(flat, comm, compressors, lr, name, rule, estimate, combine, moments, l1)
    for event in triggers:  # the threshold c·η_t² follows the step size of each step
        event.lr = lambda: optimizer.current_lr
    return optimizer


def _choice(key: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise UserError(f"{key} must be one of {', '.join(allowed)}; got {value}")
    return value
