"""AD-PSGD: asynchronous decentralized SGD over one-sided MPI windows."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch

from compoptim.comm.base import Communicator
from compoptim.compress.randomness import derived_seed
from compoptim.errors import UserError
from compoptim.optim.base import CompressorFactory, DecentralizedOptimizer
from compoptim.optim.flat import FlatParameters
from compoptim.optim.rules import SGD


class ADPSGD(DecentralizedOptimizer):
    """AD-PSGD (Lian, Zhang, Zhang & Liu 2018, "Asynchronous Decentralized Parallel
    Stochastic Gradient Descent", Algorithm 1). Each node, at its own pace, repeatedly:

        x̂_i = x_i                                 read its model (a snapshot)
        g_i = ∇F_i(x̂_i; ξ)                        the gradient at the snapshot
        j ~ uniform over this round's neighbours
        x_i, x_j <- (x_i + x_j)/2                  pairwise averaging, without waiting for j
        x_i <- x_i - lr Δ_sgd(g_i)                 (momentum and weight decay as torch.optim.SGD)

    x_i lives in an MPI window (``comm/rma.py``); j's half of the averaging is written into
    j's window while j keeps computing, and other nodes' averagings may land on x_i between
    the snapshot and the write: that count is the step's staleness (the τ of the paper),
    recorded in the node's counters. An epoch is n x (batches per shard) steps over all
    nodes, counted with a shared atomic counter, so a fast node takes more of them than a
    slow one (cycling through its shard), and no node waits for another until the epoch's
    evaluation. Not deterministic: the order of the averagings is the machines'.
    """

    asynchronous = True

    def __init__(self, flat: FlatParameters, comm: Communicator, compressors: CompressorFactory, lr: float = 0.2,
                 momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0, seed: int = 0) -> None:
        super().__init__(flat, comm, compressors, lr)
        if not compressors(0).lossless:
            raise UserError(f"optimizer=adpsgd averages whole models; compressor={compressors(0).name} is lossy: "
                            f"use compressor=none")
        self.rule = SGD(flat.params, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
        self.window = comm.model_window(flat.params)
        self._rng = np.random.default_rng(derived_seed(seed, comm.rank))
        self._update = torch.empty_like(flat.params)
        self._read = 0.0
        self._batches: Iterator | None = None

    def begin_step(self) -> None:
        self._read = self.window.read_into(self.flat.params)

    def step(self, closure=None) -> None:
        direction, scale = self.rule.step(self.flat.params, self.flat.grads, self.current_lr)
        neighbors = self.comm.topology.neighbors(self.comm.rank, self.t)
        j = int(self._rng.choice(neighbors)) if neighbors else None
        written = self.window.average_and_add(j, torch.mul(direction, -scale, out=self._update))
        k = self.comm.counters
        if j is not None:  # one get of x_j (received) and one accumulate into j's window (sent)
            k.bytes_sent += self.window.message_nbytes
            k.bytes_received += self.window.message_nbytes
            k.messages_sent += 1
        staleness = int(written - self._read)
        k.staleness_sum += staleness
        k.staleness_max = max(k.staleness_max, staleness)
        k.stale_steps += 1
        self.t += 1

    def epoch_batches(self, loader: Any) -> Iterable:
        """Batches while the epoch's shared budget of steps lasts (see the class docstring);
        afterwards every node has stopped, and ``flat.params`` is this node's model."""
        if self._batches is None:  # the shard, reshuffled each time round, for as long as it takes
            self._batches = itertools.chain.from_iterable(loader.epoch() for _ in itertools.count())
        self.window.reset_tickets()
        budget = self.comm.size * len(loader)
        while self.window.take_ticket() < budget:
            yield next(self._batches)
        self.comm.allreduce_(torch.zeros(1, dtype=torch.float64))  # every node has written its last step
        self.window.read_into(self.flat.params)

    def close(self) -> None:
        self.window.free()

    def parts(self) -> dict[str, Any]:
        return {"rule": self.rule}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "rng": self._rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._rng.bit_generator.state = state["rng"]
        self.window.write(self.flat.params)  # the trainer restored x_i into flat.params
