"""The decentralized adaptive-gradient framework of Chen et al.: DAMSGrad and DAdaGrad."""

from __future__ import annotations

from typing import Any

import torch

from compoptim.comm.base import Communicator
from compoptim.errors import check_range
from compoptim.optim.base import CompressorFactory, DecentralizedOptimizer
from compoptim.optim.flat import FlatParameters
from compoptim.optim.gossip import ChocoGossip, ExactGossip, Gossip
from compoptim.optim.rules import check_betas


class DecentralizedAdaptive(DecentralizedOptimizer):
    """Chen, Karimi, Zhao & Li 2023, "On the Convergence of Decentralized Adaptive Gradient
    Methods", ACML (Algorithm 2: decentralized AMSGrad; Algorithm 3: decentralized AdaGrad).
    Node i, step t >= 1, gradient g_t:

        m_t = beta1 m_{t-1} + (1 - beta1) g_t
        v̂_t = max(v̂_{t-1}, beta2 v_{t-1} + (1 - beta2) g_t^2)   (amsgrad; v_t the EMA inside)
        v̂_t = ((t-1)/t) v̂_{t-1} + g_t^2 / t                      (adagrad)
        x_{t+1/2} = sum_j w_ij x_j;   ũ_t = sum_j w_ij ũ_{t-1/2, j};   u_t = max(ũ_t, eps)
        x_{t+1} = x_{t+1/2} - alpha m_t / sqrt(u_t)
        ũ_{t+1/2} = ũ_t - v̂_{t-1} + v̂_t

    ũ tracks the nodes' average v̂, so all nodes use nearly the same adaptive step; it starts
    at ũ_{1/2} = v̂_0 = eps. Sends x and ũ each step (CHOCO-compressed when a compressor is
    set, each with consensus step gamma).
    """

    def __init__(self, flat: FlatParameters, comm: Communicator, compressors: CompressorFactory, lr: float,
                 kind: str, betas: tuple[float, float] = (0.9, 0.99), eps: float = 1e-6, gamma: float = 0.05) -> None:
        super().__init__(flat, comm, compressors, lr)
        self.kind = kind
        self.beta1, self.beta2 = check_betas(betas, 2)
        self.eps = check_range("optimizer.eps", eps, 0.0, low_open=True)
        gamma = check_range("optimizer.gamma", gamma, 0.0, 1.0, low_open=True, high_open=False)
        x = flat.params
        self.m = torch.zeros_like(x)
        self.v = torch.zeros_like(x)
        self.v_hat = torch.full_like(x, eps)
        self.v_hat_prev = torch.empty_like(x)
        self.u_tilde = torch.full_like(x, eps)
        self._step = torch.empty_like(x)

        def gossip(stream: int) -> Gossip:
            c = compressors(stream)
            return ExactGossip(comm, c) if c.lossless else ChocoGossip(comm, c, gamma, x)

        self.x_gossip, self.u_gossip = gossip(0), gossip(1)

    def step(self, closure=None) -> None:
        x, g = self.flat.params, self.flat.grads
        k = self.t + 1
        self.m.lerp_(g, 1.0 - self.beta1)
        self.v_hat_prev.copy_(self.v_hat)
        if self.kind == "amsgrad":
            self.v.mul_(self.beta2).addcmul_(g, g, value=1.0 - self.beta2)
            torch.maximum(self.v_hat, self.v, out=self.v_hat)
        else:
            self.v_hat.mul_((k - 1) / k).addcmul_(g, g, value=1.0 / k)
        self.x_gossip(x, self.t)
        self.u_gossip(self.u_tilde, self.t)
        u = torch.clamp(self.u_tilde, min=self.eps, out=self._step)
        x.addcdiv_(self.m, u.sqrt_(), value=-self.current_lr)
        self.u_tilde.sub_(self.v_hat_prev).add_(self.v_hat)
        self.t += 1

    def parts(self) -> dict[str, Any]:
        return {"x_gossip": self.x_gossip, "u_gossip": self.u_gossip, "m": self.m, "v": self.v,
                "v_hat": self.v_hat, "u_tilde": self.u_tilde}
