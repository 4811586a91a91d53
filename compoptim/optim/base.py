"""What every decentralized optimizer shares: the flat buffers, the network, lr, the step count."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any

import torch

from compoptim.comm.base import Communicator
from compoptim.compress.base import Compressor
from compoptim.errors import UserError, check_range
from compoptim.optim.flat import FlatParameters

# compressors(stream) -> a fresh compressor for one communicated variable; streams keep the
# random draws of different variables apart (0: x, 1: tracker, 2, 3...: moments).
CompressorFactory = Callable[[int], Compressor]
Closure = Callable[[], None]


class DecentralizedOptimizer(ABC):
    """Owns one node's flat parameter/gradient buffers; ``step()`` updates them in place.

    The caller fills ``flat.grads`` (forward/backward) and then calls ``step()``, which
    applies the algorithm's local rule, gossips with the neighbours and writes the new x.
    ``lr_scale`` is set by the learning-rate schedule; the step uses ``lr * lr_scale``.
    Algorithms that need a second gradient of the same batch at another point (STORM-type
    estimators) call ``closure()``, which recomputes ``flat.grads`` at the current x.
    """

    #: x_t's exchange travels during the backward pass (see ``begin_step``)
    overlap = False
    #: nodes step at their own pace (``epoch_batches`` decides how many steps each takes)
    asynchronous = False
    #: "full": the first step's gradient is this node's full local gradient (the mean over
    #: its whole shard, computed once by the trainer), as tracking methods' authors
    #: initialise their trackers; "minibatch": the first minibatch's, like every other step.
    initial_gradient = "minibatch"

    def __init__(self, flat: FlatParameters, comm: Communicator, compressors: CompressorFactory,
                 lr: float) -> None:
        self.flat = flat
        self.comm = comm
        self.compressors = compressors
        self.lr = check_range("optimizer.lr", lr, 0.0, low_open=True)
        self.lr_scale = 1.0
        self.t = 0

    @property
    def current_lr(self) -> float:
        return self.lr * self.lr_scale

    def begin_step(self) -> None:  # noqa: B027 - optional hook, a no-op for most algorithms
        """Called before the gradient is computed: algorithms that can start communicating
        x_t already (combine-then-adapt with exact gossip) post the exchange here."""

    def epoch_batches(self, loader: Any) -> Iterable:
        """The batches this node trains on in one epoch: its shard's, each once, in lockstep
        with the other nodes (an asynchronous method decides otherwise)."""
        return loader.epoch()

    @abstractmethod
    def step(self, closure: Closure | None = None) -> None:
        """One iteration t -> t+1 using the gradient in ``flat.grads``."""

    def close(self) -> None:  # noqa: B027 - a no-op for the methods that hold nothing to release
        """Release what the run holds (collective: every node calls it at the end of training)."""

    def parts(self) -> dict[str, Any]:
        """The stateful pieces (rules, gossips, compressors) whose state_dicts make up ours."""
        return {}

    def tracker(self) -> torch.Tensor | None:
        """This node's gradient tracker y_i (its estimate of the global gradient) for tracking
        methods, after the last step; None for the others."""
        return None

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"t": self.t}
        for name, part in self.parts().items():
            state[name] = part.state_dict() if hasattr(part, "state_dict") else part.clone()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t = int(state["t"])
        for name, part in self.parts().items():
            if hasattr(part, "load_state_dict"):
                part.load_state_dict(state[name])
            else:
                part.copy_(state[name])


INITIAL_GRADIENTS = ("full", "minibatch")


def check_initial_gradient(value: str) -> str:
    if value not in INITIAL_GRADIENTS:
        raise UserError(f"optimizer.initial_gradient must be one of {', '.join(INITIAL_GRADIENTS)} (the gradient "
                        f"of the first step: the node's whole shard, or its first minibatch); got {value}")
    return value


def soft_threshold_(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """prox of threshold*||x||_1: x <- sign(x) max(|x| - threshold, 0), in place."""
    return x.copy_(torch.nn.functional.softshrink(x, threshold)) if threshold > 0 else x
