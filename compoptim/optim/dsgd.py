"""D-PSGD: decentralized parallel SGD."""

from __future__ import annotations

from typing import Any

import torch

from compoptim.comm.base import Communicator
from compoptim.compress.base import Compressor
from compoptim.optim.base import DecentralizedOptimizer, check_range
from compoptim.optim.flat import FlatParameters


class DSGD(DecentralizedOptimizer):
    """D-PSGD, Lian et al. 2017, "Can Decentralized Algorithms Outperform Centralized
    Algorithms? A Case Study for Decentralized Parallel Stochastic Gradient Descent",
    NeurIPS, Algorithm 1. Node i, step t, stochastic gradient g_i^t at its own x_i^t:

        d_i^t     = g_i^t + lambda * x_i^t                 (weight decay, lambda >= 0)
        m_i^{t+1} = mu * m_i^t + d_i^t,  m^0 = 0           (heavy ball; mu = 0: m = d)
        x_i^{t+1} = sum_j w_ij x_j^t - eta * m_i^{t+1}     (gossip the old x, then step)

    i.e. X^{t+1} = W X^t - eta M^{t+1} in matrix form. With n = 1 this is exactly
    ``torch.optim.SGD(lr=eta, momentum=mu, weight_decay=lambda)``. Each step sends x_i^t
    (its compressed payload) to every neighbour once.
    """

    def __init__(self, flat: FlatParameters, comm: Communicator, compressor: Compressor,
                 lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        super().__init__(flat, comm, compressor)
        self.lr = check_range("optimizer.lr", lr, 0.0, low_open=True, high=None)
        self.momentum = check_range("optimizer.momentum", momentum, 0.0, 1.0)
        self.weight_decay = check_range("optimizer.weight_decay", weight_decay, 0.0)
        self.momentum_buffer = torch.zeros_like(flat.params) if self.momentum > 0 else None

    def step(self) -> None:
        x, d = self.flat.params, self.flat.grads
        if self.weight_decay:
            d.add_(x, alpha=self.weight_decay)
        if self.momentum_buffer is not None:
            d = self.momentum_buffer.mul_(self.momentum).add_(d)
        # The exchange completes before neighbor_mix writes, so x can be its own output.
        self.comm.neighbor_mix(self.comm.encode(self.compressor, x), self.compressor, out=x, step=self.t)
        x.add_(d, alpha=-self.lr)
        self.t += 1

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.momentum_buffer is not None:
            state["momentum_buffer"] = self.momentum_buffer.clone()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if self.momentum_buffer is not None:
            self.momentum_buffer.copy_(state["momentum_buffer"])
