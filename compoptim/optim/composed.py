"""A local rule + a gradient estimate + a gossip scheme per communicated variable.

Most named algorithms are presets of this one class (see ``presets.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from compoptim.comm.base import Communicator
from compoptim.errors import UserError
from compoptim.optim.base import CompressorFactory, DecentralizedOptimizer, is_lossless, soft_threshold_
from compoptim.optim.checks import check_range
from compoptim.optim.flat import FlatParameters
from compoptim.optim.gossip import GOSSIPS, ChocoGossip, ExactGossip, GlobalAverage, Gossip
from compoptim.optim.rules import LocalRule

ORDERS = ("atc", "cta")
# Compressor streams: separate random draws for each communicated variable.
_STREAMS = {"x": 0, "y": 1, "m": 2, "v": 3, "u": 4}


class RuleOptimizer(DecentralizedOptimizer):
    """Node i, step t, stochastic gradient g_t at x_t, local rule Δ (sgd, adam, ...):

        d_t = g_t                                              (raw gradient)
        d_t = y_t,  y_t = G(y_{t-1}) + g_t - g_{t-1}   (cta)   (gradient tracking, y_{-1} = g_{-1} = 0)
                    y_t = G(y_{t-1} + g_t - g_{t-1})   (atc)
        d_t = (1/n) sum_j g_t^j                                (gossip=allreduce: centralized baseline)

        x_{t+1} = G(x_t) - Δ(x_t, d_t)      (order=cta: combine, then adapt; D-PSGD, DIGing)
        x_{t+1} = G(x_t - Δ(x_t, d_t))      (order=atc: adapt, then combine; CHOCO-SGD)

    G is the gossip of each variable in ``comm_set`` (x always; the rule's moments m, v on
    request; the tracker y with tracking): exact (sum_j w_ij v_j), CHOCO-compressed with
    consensus step gamma (gamma_y for the tracker), or exact averaging over all nodes
    (gossip=local: local SGD). With ``overlap`` (CTA, exact gossip; on by default where
    possible), the exchange of x_t starts before the gradient is computed and completes in
    ``step()``: the same arithmetic, communication hidden behind computation. With
    ``period`` H > 1, nodes communicate only at steps t = H-1, 2H-1, ... and take H - 1
    local steps in between (G = identity then). An l1
    term l1·||x||_1 adds its proximal step after the local update.
    """

    def __init__(self, flat: FlatParameters, comm: Communicator, compressors: CompressorFactory, lr: float,
                 rule: LocalRule, name: str, gossip: str = "auto", comm_set: Sequence[str] = ("x",),
                 order: str = "atc", gamma: float = 1.0, period: int = 1, tracking: bool = False,
                 l1: float = 0.0, gamma_y: float | None = None, overlap: bool | None = None) -> None:
        super().__init__(flat, comm, compressors, lr)
        self.rule, self.name = rule, name
        self.order = _choice("optimizer.order", order, ORDERS)
        gossip = _choice("optimizer.gossip", gossip, GOSSIPS)
        self.gamma = check_range("optimizer.gamma", gamma, 0.0, 1.0, low_open=True, high_open=False)
        self.gamma_y = self.gamma if gamma_y is None else check_range(
            "optimizer.gamma_y", gamma_y, 0.0, 1.0, low_open=True, high_open=False)
        self.l1 = check_range("optimizer.l1", l1, 0.0)
        if period < 1:
            raise UserError(f"optimizer.period must be >= 1 (steps between averaging); got {period}")
        comm_set = list(comm_set)
        allowed = ["x", *rule.moments]
        if "x" not in comm_set or any(v not in allowed for v in comm_set) or len(set(comm_set)) != len(comm_set):
            raise UserError(f"optimizer.comm_set must list x and any of {', '.join(rule.moments) or 'nothing else'} "
                            f"for {name}; got {comm_set}")
        lossless = is_lossless(compressors(0))
        if gossip == "auto":
            gossip = "exact" if lossless else "choco"
        if gossip == "exact" and not lossless:
            raise UserError(f"optimizer.gossip=exact sends uncompressed vectors, but compressor={compressors(0).name}; "
                            f"use optimizer.gossip=choco (or auto) to gossip compressed")
        if gossip in ("allreduce", "local") and (tracking or comm_set != ["x"] or not lossless):
            raise UserError(f"optimizer.gossip={gossip} averages over all nodes: it takes no tracking, no "
                            f"comm_set beyond x and no compressor")
        if gossip == "allreduce" and period != 1:
            raise UserError("optimizer.gossip=allreduce averages the gradient every step; use gossip=local "
                            "with optimizer.period for periodic averaging")
        self.gossip_kind = gossip
        self.tracking = tracking
        x = flat.params
        self.gossips: dict[str, Gossip] = {}
        self.period = period
        if gossip == "local":
            self.gossips["x"] = GlobalAverage(comm)
        elif gossip != "allreduce":
            for var in (*comm_set, *(("y",) if tracking else ())):
                self.gossips[var] = self._make_gossip(gossip, var, x)
        if tracking:
            self.y = torch.zeros_like(x)
            self.g_prev = torch.zeros_like(x)
        possible = self.order == "cta" and gossip == "exact" and not tracking and period == 1
        if overlap and not possible:
            raise UserError("optimizer.overlap sends x_t while the gradient is computed, which needs "
                            "optimizer.order=cta, optimizer.gossip=exact, no tracking and period 1")
        # None (the default): overlap whenever the form allows and there is someone to talk to.
        self.overlap = possible and not self.gossips["x"].trivial if overlap is None else bool(overlap)
        self._pending = None

    def begin_step(self) -> None:
        if self.overlap:  # x_t does not change until step(): its exchange can travel meanwhile
            self._pending = self.gossips["x"].start(self.flat.params, self.t)

    def _make_gossip(self, kind: str, var: str, like: torch.Tensor) -> Gossip:
        compressor = self.compressors(_STREAMS[var])
        if kind == "exact":
            return ExactGossip(self.comm, compressor)
        return ChocoGossip(self.comm, compressor, self.gamma_y if var == "y" else self.gamma, like)

    def step(self, closure=None) -> None:
        x, g, t = self.flat.params, self.flat.grads, self.t
        communicate = (t + 1) % self.period == 0
        if self.gossip_kind == "allreduce":
            self.comm.allreduce_(g, "mean", training=True)
        direction = g
        if self.tracking:
            y = self.y
            if self.order == "cta" and communicate:
                self.gossips["y"](y, t)
            y.add_(g).sub_(self.g_prev)
            if self.order == "atc" and communicate:
                self.gossips["y"](y, t)
            self.g_prev.copy_(g)
            direction = y
        step_direction, scale = self.rule.step(x, direction, self.current_lr)
        gossip_x = self.gossips.get("x") if communicate else None
        if self._pending is not None:
            self.gossips["x"].finish(self._pending, x)
            self._pending = None
            x.add_(step_direction, alpha=-scale)
            soft_threshold_(x, self.current_lr * self.l1)
        elif self.order == "cta" and gossip_x is not None:
            gossip_x(x, t)  # Δ was computed from x_t above
            x.add_(step_direction, alpha=-scale)
            soft_threshold_(x, self.current_lr * self.l1)
        else:
            x.add_(step_direction, alpha=-scale)
            soft_threshold_(x, self.current_lr * self.l1)
            if gossip_x is not None:
                gossip_x(x, t)
        for var, gossip in self.gossips.items():
            if var not in ("x", "y") and communicate:
                gossip(self.rule.state(var), t)
        self.t += 1

    def parts(self) -> dict[str, Any]:
        parts: dict[str, Any] = {"rule": self.rule, **{f"gossip_{k}": v for k, v in self.gossips.items()}}
        if self.tracking:
            parts.update(y=self.y, g_prev=self.g_prev)
        return parts


def _choice(key: str, value: str, allowed: Sequence[str]) -> str:
    value = str(getattr(value, "value", value))
    if value not in allowed:
        raise UserError(f"{key} must be one of {', '.join(allowed)}; got {value}")
    return value
