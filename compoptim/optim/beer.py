"""BEER: compressed gradient tracking with compressed copies of the iterates and trackers."""

from __future__ import annotations

from typing import Any

import torch

from compoptim.comm.base import Communicator
from compoptim.errors import check_range
from compoptim.optim.base import CompressorFactory, DecentralizedOptimizer, check_initial_gradient
from compoptim.optim.flat import FlatParameters
from compoptim.optim.gossip import CompressedCopy


class BEER(DecentralizedOptimizer):
    """Zhao, Li, Li, Richtárik & Chi 2022, "BEER: Fast O(1/T) Rate for Decentralized Nonconvex
    Optimization with Communication Compression", NeurIPS, Algorithm 1 (rows: nodes):

        X^{t+1} = X^t + gamma H^t (W - I) - eta V^t
        H^{t+1} = H^t + C(X^{t+1} - H^t)
        V^{t+1} = V^t + gamma G^t (W - I) + grad F(X^{t+1}) - grad F(X^t)
        G^{t+1} = G^t + C(V^{t+1} - G^t)

    with H^0 = G^0 = 0 and V^0 = grad F(X^0) (the authors' code): with
    ``initial_gradient=full`` (the default, as the authors initialise it) the full gradient
    of each node's local objective at X^0, with ``minibatch`` the first minibatch's; the
    later differences grad F(X^{t+1}) - grad F(X^t) are minibatch gradients. H and G are the
    compressed copies (``CompressedCopy``: each node keeps its own and the weighted sum of
    its neighbours'). Sends two compressed vectors per step (one at the first step).
    """

    def __init__(self, flat: FlatParameters, comm: Communicator, compressors: CompressorFactory, lr: float = 0.1,
                 gamma: float = 0.2, initial_gradient: str = "full") -> None:
        super().__init__(flat, comm, compressors, lr)
        self.gamma = check_range("optimizer.gamma", gamma, 0.0, 1.0, low_open=True, high_open=False)
        self.initial_gradient = check_initial_gradient(initial_gradient)
        x = flat.params
        self.h = CompressedCopy(comm, compressors(0), x)
        self.g_copy = CompressedCopy(comm, compressors(1), x)
        self.v = torch.zeros_like(x)
        self.grad_prev = torch.zeros_like(x)

    def step(self, closure=None) -> None:
        x, grad = self.flat.params, self.flat.grads
        if self.t == 0:
            self.v.copy_(grad)  # V^0 = grad F(X^0); G^0 = 0
        else:
            # finish iteration t-1: V^t = V^{t-1} + gamma G^{t-1}(W - I) + grad F(X^t) - grad F(X^{t-1})
            self.g_copy.add_consensus_(self.v, self.gamma).add_(grad).sub_(self.grad_prev)
            self.g_copy.update(self.v, self.t)  # G^t = G^{t-1} + C(V^t - G^{t-1})
        self.grad_prev.copy_(grad)
        # X^{t+1} = X^t + gamma H^t (W - I) - eta V^t;  H^{t+1} = H^t + C(X^{t+1} - H^t)
        self.h.add_consensus_(x, self.gamma).add_(self.v, alpha=-self.current_lr)
        self.h.update(x, self.t)
        self.t += 1

    def tracker(self) -> torch.Tensor:
        return self.v  # V^t, tracking the nodes' mean gradient

    def parts(self) -> dict[str, Any]:
        return {"h": self.h, "g": self.g_copy, "v": self.v, "grad_prev": self.grad_prev}
