"""DoCoM: compressed gradient tracking with a STORM-type momentum gradient estimator."""

from __future__ import annotations

from typing import Any

import torch

from compoptim.comm.base import Communicator
from compoptim.errors import UserError, check_range
from compoptim.optim.base import CompressorFactory, DecentralizedOptimizer, check_initial_gradient
from compoptim.optim.flat import FlatParameters
from compoptim.optim.gossip import ChocoGossip


class DoCoM(DecentralizedOptimizer):
    """Yau & Wai 2023, "DoCoM: Compressed Decentralized Optimization with Near-Optimal Sample
    Complexity", TMLR (Algorithm 1, as the authors' notebook runs it). Node i:

        theta_hat^{t+1} = theta_hat^t + C(theta^t - eta g^t - theta_hat^t)
        theta^{t+1}     = theta^t - eta g^t + gamma sum_j w_ij (theta_hat_j^{t+1} - theta_hat_i^{t+1})
        v^{t+1} = grad f(theta^{t+1}; xi^{t+1}) + (1 - beta)(v^t - grad f(theta^t; xi^{t+1}))
        g_hat^{t+1} = g_hat^t + C(g^t + v^{t+1} - v^t - g_hat^t)
        g^{t+1}     = g^t + v^{t+1} - v^t + gamma sum_j w_ij (g_hat_j^{t+1} - g_hat_i^{t+1})

    theta_hat^0 = g_hat^0 = 0 and g^0 = v^0 = grad f(theta^0; xi^0), where the paper's initial
    batch xi^0 is this node's first minibatch (``initial_gradient=minibatch``, the default)
    or its whole shard (``full``). The estimator evaluates the same minibatch at the
    new and the previous iterate: two gradients per step (the trainer's closure). Sends two
    compressed vectors per step (one at the first).
    """

    def __init__(self, flat: FlatParameters, comm: Communicator, compressors: CompressorFactory, lr: float = 0.05,
                 gamma: float = 0.2, beta: float = 0.3, initial_gradient: str = "minibatch") -> None:
        super().__init__(flat, comm, compressors, lr)
        self.initial_gradient = check_initial_gradient(initial_gradient)
        self.gamma = check_range("optimizer.gamma", gamma, 0.0, 1.0, low_open=True, high_open=False)
        self.beta = check_range("optimizer.beta", beta, 0.0, 1.0, low_open=True, high_open=False)
        x = flat.params
        self.theta_gossip = ChocoGossip(comm, compressors(0), self.gamma, x)
        self.g_gossip = ChocoGossip(comm, compressors(1), self.gamma, x)
        self.v = torch.zeros_like(x)
        self.g = torch.zeros_like(x)
        self.theta_prev = torch.zeros_like(x)
        self._scratch = torch.empty_like(x)
        self._current = torch.empty_like(x)

    def step(self, closure=None) -> None:
        theta, grad = self.flat.params, self.flat.grads
        if self.t == 0:
            self.v.copy_(grad)
            self.g.copy_(grad)
        else:
            if closure is None:
                raise UserError("optimizer=docom needs the gradient of the same minibatch at the previous iterate "
                                "(a closure); the trainer passes one")
            # v^{t} = grad f(theta^t; xi^t) + (1 - beta)(v^{t-1} - grad f(theta^{t-1}; xi^t))
            new_v = self._scratch.copy_(grad)
            self._current.copy_(theta)
            theta.copy_(self.theta_prev)
            closure()  # flat.grads <- grad f(theta^{t-1}; xi^t)
            theta.copy_(self._current)
            new_v.add_(self.v, alpha=1.0 - self.beta).add_(self.flat.grads, alpha=-(1.0 - self.beta))
            # g^t = g^{t-1} + v^t - v^{t-1}, then its compressed gossip
            self.g.add_(new_v).sub_(self.v)
            self.v.copy_(new_v)
            self.g_gossip(self.g, self.t)
        self.theta_prev.copy_(theta)
        theta.add_(self.g, alpha=-self.current_lr)
        self.theta_gossip(theta, self.t)
        self.t += 1

    def tracker(self) -> torch.Tensor:
        return self.g  # g^t, tracking the nodes' mean momentum estimate v

    def parts(self) -> dict[str, Any]:
        return {"theta": self.theta_gossip, "g_gossip": self.g_gossip, "v": self.v, "g": self.g,
                "theta_prev": self.theta_prev}
