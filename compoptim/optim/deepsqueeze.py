"""DeepSqueeze: error-compensated compression of the whole model."""

from __future__ import annotations

from typing import Any

import torch

from compoptim.comm.base import Communicator
from compoptim.errors import check_range
from compoptim.optim.base import CompressorFactory, DecentralizedOptimizer
from compoptim.optim.flat import FlatParameters
from compoptim.optim.gossip import refuse_error_feedback
from compoptim.optim.rules import SGD


class DeepSqueeze(DecentralizedOptimizer):
    """Tang et al. 2019, "DeepSqueeze: Decentralization Meets Error-Compensated Compression",
    Algorithm 1. Node i, step t (δ is the compression error memory, δ^0 = 0):

        v_i = x_i^t - eta * g_i^t                       (local SGD step, optional momentum)
        c_i = C(v_i + δ_i);   δ_i <- v_i + δ_i - c_i     (send c_i: the compressed model itself)
        x_i^{t+1} = v_i + gamma * sum_j (w_ij - 1[i = j]) c_j

    With the identity compressor and gamma = 1 this is x^{t+1} = W (x^t - eta g^t).
    Sends one compressed vector per step.
    """

    def __init__(self, flat: FlatParameters, comm: Communicator, compressors: CompressorFactory, lr: float = 0.2,
                 gamma: float = 0.05, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        super().__init__(flat, comm, compressors, lr)
        self.gamma = check_range("optimizer.gamma", gamma, 0.0, 1.0, low_open=True, high_open=False)
        self.rule = SGD(flat.params, momentum=momentum, weight_decay=weight_decay)
        self.compressor = compressors(0)
        refuse_error_feedback(self.compressor, "deepsqueeze (it keeps its own error memory)")
        self.memory = torch.zeros_like(flat.params)
        self._mixed = torch.empty_like(flat.params)

    def step(self, closure=None) -> None:
        x = self.flat.params
        direction, scale = self.rule.step(x, self.flat.grads, self.current_lr)
        x.add_(direction, alpha=-scale)  # x now holds v
        self.memory.add_(x)  # v + δ
        payload = self.compressor.encode(self.memory)
        self.comm.neighbor_mix(payload, self.compressor, out=self._mixed, step=self.t)  # sum_j w_ij c_j
        # x <- v + gamma (sum_j w_ij c_j - c_i), then δ <- v + δ - c_i (last: with the identity
        # compressor the payload is a view of the memory)
        x.add_(self._mixed, alpha=self.gamma)
        self.compressor.decode_add(payload, x, -self.gamma)
        self.compressor.decode_add(payload, self.memory, -1.0)
        self.t += 1

    def parts(self) -> dict[str, Any]:
        return {"rule": self.rule, "memory": self.memory, "compressor": self.compressor}
