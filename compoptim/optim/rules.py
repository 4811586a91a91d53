"""Local update rules on flat buffers, each matching its ``torch.optim`` counterpart.

A rule turns (x, g) into the step Δ = scale * direction with x_new = x - Δ, keeps its own
state (moments) as flat tensors, and knows nothing of the network. ``direction`` is a
buffer of the rule's (the momentum itself, where it can be), so applying the step is one
fused ``x.add_(direction, alpha=-scale)`` with no copy. With one node and no communication,
this is exactly ``torch.optim.<Rule>.step()``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import torch

from compoptim.errors import UserError, check_range
from compoptim.registry import Registry, specialize


def check_betas(betas: Any, count: int) -> tuple[float, ...]:
    """``optimizer.betas`` as ``count`` floats, each >= 0 and < 1; else one line saying so."""
    if len(betas) != count:
        names = ", ".join(f"beta{i + 1}" for i in range(count))
        raise UserError(f"optimizer.betas must be {('two', 'three')[count - 2]} numbers [{names}]; got {list(betas)}")
    return tuple(check_range(f"optimizer.betas[{i}]", b, 0.0, 1.0) for i, b in enumerate(betas))


class LocalRule(ABC):
    """``step(x, g, lr)`` returns (direction, scale), Δ = scale * direction; ``t`` counts steps.

    The direction is computed from x_t and the rule's state only, and is not changed by a
    later update of x, so combine-then-adapt can gossip x before applying it."""

    #: names of the flat state tensors that may be gossiped (``optimizer.comm_set``)
    moments: tuple[str, ...] = ()

    def __init__(self, like: torch.Tensor) -> None:
        self.delta = torch.empty_like(like)
        self.t = 0

    @abstractmethod
    def step(self, x: torch.Tensor, g: torch.Tensor, lr: float) -> tuple[torch.Tensor, float]:
        """(direction, scale) of this step's update Δ = scale * direction; advances the state."""

    def state(self, name: str) -> torch.Tensor:
        return getattr(self, name)

    def state_dict(self) -> dict[str, Any]:
        return {"t": self.t, **{name: getattr(self, name).clone() for name in self._saved()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t = int(state["t"])
        for name in self._saved():
            getattr(self, name).copy_(state[name])

    def _saved(self) -> tuple[str, ...]:
        return self.moments


class SGD(LocalRule):
    """torch.optim.SGD: d = g + wd·x; b = μ·b + (1 - dampening)·d (b = d at the first step);
    Δ = lr·(d + μ·b) with Nesterov, else lr·b (μ = 0: plain SGD, Δ = lr·d)."""

    moments = ("m",)

    def __init__(self, like: torch.Tensor, momentum: float = 0.0, dampening: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        super().__init__(like)
        check_range("optimizer.momentum", momentum, 0.0, 1.0)
        check_range("optimizer.dampening", dampening, 0.0, 1.0, high_open=False)
        check_range("optimizer.weight_decay", weight_decay, 0.0)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise UserError("optimizer.nesterov needs optimizer.momentum > 0 and dampening = 0")
        self.momentum, self.dampening, self.nesterov, self.weight_decay = momentum, dampening, nesterov, weight_decay
        self.m = torch.zeros_like(like)

    def step(self, x: torch.Tensor, g: torch.Tensor, lr: float) -> tuple[torch.Tensor, float]:
        d = torch.add(g, x, alpha=self.weight_decay, out=self.delta) if self.weight_decay else g
        self.t += 1
        if not self.momentum:
            return d, lr
        if self.t == 1:
            self.m.copy_(d)
        else:
            self.m.mul_(self.momentum).add_(d, alpha=1.0 - self.dampening)
        if self.nesterov:
            return torch.add(d, self.m, alpha=self.momentum, out=self.delta), lr
        return self.m, lr

    def _saved(self) -> tuple[str, ...]:
        return self.moments if self.momentum else ()


def fused_kernel_applies(like: torch.Tensor) -> bool:
    """Whether torch has fused optimizer kernels for tensors like ``like`` (CPU and CUDA,
    floating point): one pass over the flat buffers instead of one per elementwise op."""
    return like.device.type in ("cpu", "cuda") and like.dtype in (torch.float16, torch.bfloat16, torch.float32,
                                                                   torch.float64)


class Adam(LocalRule):
    """torch.optim.Adam / AdamW / AMSGrad (Kingma & Ba 2015; Loshchilov & Hutter 2019;
    Reddi et al. 2018). With g' = g + wd·x (Adam) or g' = g (AdamW):

        m = β1·m + (1-β1)·g',  v = β2·v + (1-β2)·g'²,  v_max = max(v_max, v) (AMSGrad)
        Δ = lr·(m/(1-β1^t)) / (sqrt(v or v_max)/sqrt(1-β2^t) + eps)  [+ lr·wd·x for AdamW]

    ``fused``: the moments and the direction m / denom in one pass of torch's fused Adam
    kernel (``torch._fused_adam_``, what ``torch.optim.Adam(fused=True)`` runs) on the flat
    buffers, where it applies (CPU, CUDA); its rounding differs from the op-by-op sequence
    (``fused=false``) in the last bits, both match ``torch.optim`` to 1e-6.
    """

    moments = ("m", "v")

    def __init__(self, like: torch.Tensor, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled: bool = False, amsgrad: bool = False,
                 fused: bool = True) -> None:
        super().__init__(like)
        self.beta1, self.beta2 = check_betas(betas, 2)
        check_range("optimizer.eps", eps, 0.0, low_open=True)
        check_range("optimizer.weight_decay", weight_decay, 0.0)
        self.eps, self.weight_decay, self.decoupled, self.amsgrad = eps, weight_decay, decoupled, amsgrad
        self.m = torch.zeros_like(like)
        self.v = torch.zeros_like(like)
        self.v_max = torch.zeros_like(like) if amsgrad else None
        self._denom = torch.empty_like(like)
        self.fused = bool(fused) and fused_kernel_applies(like)
        # The fused kernel reads the step count from a tensor, as torch.optim keeps it.
        self._step_count = torch.zeros((), dtype=torch.float32, device=like.device)

    def step(self, x: torch.Tensor, g: torch.Tensor, lr: float) -> tuple[torch.Tensor, float]:
        self.t += 1
        if self.fused:
            return self._fused_step(x, g, lr)
        if self.weight_decay and not self.decoupled:
            g = torch.add(g, x, alpha=self.weight_decay, out=self.delta)
        self.m.lerp_(g, 1.0 - self.beta1)
        self.v.mul_(self.beta2).addcmul_(g, g, value=1.0 - self.beta2)
        second = self.v
        if self.v_max is not None:
            second = torch.maximum(self.v_max, self.v, out=self.v_max)
        bias1 = 1.0 - self.beta1**self.t
        bias2 = 1.0 - self.beta2**self.t
        denom = torch.sqrt(second, out=self._denom).div_(math.sqrt(bias2)).add_(self.eps)
        torch.div(self.m, denom, out=self.delta)
        if self.weight_decay and self.decoupled:  # Δ = lr (m̂/denom + wd x): one scale for both terms
            self.delta.add_(x, alpha=self.weight_decay * bias1)
        return self.delta, lr / bias1

    def _fused_step(self, x: torch.Tensor, g: torch.Tensor, lr: float) -> tuple[torch.Tensor, float]:
        # The kernel updates a "parameter" p <- p - (lr/bias1)·m/denom. Run on the Δ buffer
        # with lr = -bias1, it adds there the direction m/denom (the step is applied, or
        # gossiped first, by the caller). Its own weight decay would read p, not x: L2
        # decay goes into g' beforehand, and the decoupled one is Δ's starting value
        # (wd·bias1·x, so that lr/bias1 · Δ = lr·m̂/denom + lr·wd·x), else Δ starts at 0.
        bias1 = 1.0 - self.beta1**self.t
        if self.weight_decay and not self.decoupled:
            g = torch.add(g, x, alpha=self.weight_decay, out=self._denom)
        if self.weight_decay and self.decoupled:
            torch.mul(x, self.weight_decay * bias1, out=self.delta)
        else:
            self.delta.zero_()
        self._step_count.fill_(self.t)
        torch._fused_adam_([self.delta], [g], [self.m], [self.v], [] if self.v_max is None else [self.v_max],
                           [self._step_count], lr=-bias1, beta1=self.beta1, beta2=self.beta2, weight_decay=0.0,
                           eps=self.eps, amsgrad=self.amsgrad, maximize=False)
        return self.delta, lr / bias1

    def _saved(self) -> tuple[str, ...]:
        return ("m", "v", "v_max") if self.v_max is not None else ("m", "v")


class Adagrad(LocalRule):
    """torch.optim.Adagrad (Duchi et al. 2011): g' = g + wd·x; G = G + g'²;
    Δ = lr/(1 + (t-1)·lr_decay) · g' / (sqrt(G) + eps), G starting at initial_accumulator_value.

    ``fused``: G and the direction in one pass of torch's fused Adagrad kernel (CPU only),
    as ``Adam``'s; false: op by op."""

    moments = ("v",)

    def __init__(self, like: torch.Tensor, eps: float = 1e-10, weight_decay: float = 0.0, lr_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, fused: bool = True) -> None:
        super().__init__(like)
        check_range("optimizer.eps", eps, 0.0, low_open=True)
        check_range("optimizer.weight_decay", weight_decay, 0.0)
        check_range("optimizer.lr_decay", lr_decay, 0.0)
        check_range("optimizer.initial_accumulator_value", initial_accumulator_value, 0.0)
        self.eps, self.weight_decay, self.lr_decay = eps, weight_decay, lr_decay
        self.v = torch.full_like(like, initial_accumulator_value)
        self._denom = torch.empty_like(like)
        # torch has a fused Adagrad kernel on the CPU only
        self.fused = bool(fused) and like.device.type == "cpu" and fused_kernel_applies(like)
        self._step_count = torch.zeros((), dtype=torch.float32, device=like.device)

    def step(self, x: torch.Tensor, g: torch.Tensor, lr: float) -> tuple[torch.Tensor, float]:
        self.t += 1
        decay = 1.0 + (self.t - 1) * self.lr_decay
        if self.weight_decay:
            g = torch.add(g, x, alpha=self.weight_decay, out=self._denom if self.fused else self.delta)
        if self.fused:
            # As Adam's fused step: on a zeroed Δ buffer with lr = -decay (the kernel's clr is
            # lr / decay = -1), the kernel leaves the direction g'/(sqrt(G) + eps) there.
            self._step_count.fill_(self.t)
            torch._fused_adagrad_([self.delta.zero_()], [g], [self.v], [self._step_count], lr=-decay,
                                  lr_decay=self.lr_decay, weight_decay=0.0, eps=self.eps, maximize=False)
            return self.delta, lr / decay
        self.v.addcmul_(g, g, value=1.0)
        return torch.div(g, torch.sqrt(self.v, out=self._denom).add_(self.eps), out=self.delta), lr / decay


class HeavyBall(LocalRule):
    """Heavy-ball momentum as an average: m = β·m + (1-β)·d, m starting at 0; Δ = lr·m
    (the momentum of DaSHCo, applied to the tracked gradient)."""

    moments = ("m",)

    def __init__(self, like: torch.Tensor, beta: float = 0.9) -> None:
        super().__init__(like)
        check_range("optimizer.beta", beta, 0.0, 1.0)
        self.beta = beta
        self.m = torch.zeros_like(like)

    def step(self, x: torch.Tensor, g: torch.Tensor, lr: float) -> tuple[torch.Tensor, float]:
        self.t += 1
        self.m.lerp_(g, 1.0 - self.beta)
        return self.m, lr


class DamscoRule(LocalRule):
    """The adaptive step of DAMSCo (AMSGrad-type, as the authors' code computes it):
    m = β1·m + (1-β1)·g;  û = β2·û + (1-β2)·g²;  u = max(u, û);  Δ = lr·m / sqrt(u + eps)
    (no bias correction; eps inside the square root; all moments start at 0)."""

    moments = ("m", "u")

    def __init__(self, like: torch.Tensor, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(like)
        self.beta1, self.beta2 = check_betas(betas, 2)
        self.eps = check_range("optimizer.eps", eps, 0.0, low_open=True)
        self.m = torch.zeros_like(like)
        self.u = torch.zeros_like(like)
        self.u_hat = torch.zeros_like(like)

    def step(self, x: torch.Tensor, g: torch.Tensor, lr: float) -> tuple[torch.Tensor, float]:
        self.t += 1
        self.m.lerp_(g, 1.0 - self.beta1)
        self.u_hat.mul_(self.beta2).addcmul_(g, g, value=1.0 - self.beta2)
        torch.maximum(self.u, self.u_hat, out=self.u)
        torch.add(self.u, self.eps, out=self.delta).sqrt_()
        return torch.div(self.m, self.delta, out=self.delta), lr

    def _saved(self) -> tuple[str, ...]:
        return ("m", "u", "u_hat")


class DadamRule(LocalRule):
    """The adaptive step of DADAM (Nazari, Tarzanagh & Michailidis 2019, "DADAM: A
    Consensus-based Distributed Adaptive Gradient Method for Online Optimization"):
    m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²;  v̂ = β3·v̂ + (1-β3)·max(v̂, v);
    Δ = lr·m / (sqrt(v̂) + eps), all moments starting at 0."""

    moments = ("m", "v")

    def __init__(self, like: torch.Tensor, betas: tuple[float, float, float] = (0.9, 0.999, 0.9),
                 eps: float = 1e-8) -> None:
        super().__init__(like)
        self.beta1, self.beta2, self.beta3 = check_betas(betas, 3)
        self.eps = check_range("optimizer.eps", eps, 0.0, low_open=True)
        self.m = torch.zeros_like(like)
        self.v = torch.zeros_like(like)
        self.v_hat = torch.zeros_like(like)

    def step(self, x: torch.Tensor, g: torch.Tensor, lr: float) -> tuple[torch.Tensor, float]:
        self.t += 1
        self.m.lerp_(g, 1.0 - self.beta1)
        self.v.mul_(self.beta2).addcmul_(g, g, value=1.0 - self.beta2)
        torch.maximum(self.v_hat, self.v, out=self.delta)
        self.v_hat.mul_(self.beta3).add_(self.delta, alpha=1.0 - self.beta3)
        torch.sqrt(self.v_hat, out=self.delta).add_(self.eps)
        return torch.div(self.m, self.delta, out=self.delta), lr

    def _saved(self) -> tuple[str, ...]:
        return ("m", "v", "v_hat")


# The local rules by name: each factory's signature (after ``like``) is the rule's settings.
RULES = Registry("rule", context=("like",))
RULES.register("sgd", SGD)
RULES.register("adam", specialize(Adam, "adam", fixed={"decoupled": False, "amsgrad": False}))
RULES.register("adamw", specialize(Adam, "adamw", "torch.optim.AdamW: decoupled weight decay (torch's default 0.01).",
                                   fixed={"decoupled": True, "amsgrad": False}, weight_decay=0.01))
RULES.register("amsgrad", specialize(Adam, "amsgrad", "torch.optim.Adam with amsgrad=True.",
                                     fixed={"decoupled": False, "amsgrad": True}))
RULES.register("adagrad", Adagrad)
RULES.register("heavy_ball", HeavyBall)
RULES.register("damsco", DamscoRule)
RULES.register("dadam", DadamRule)
