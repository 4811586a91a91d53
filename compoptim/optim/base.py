"""What every decentralized optimizer shares: the flat buffers, the network, the step count."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from compoptim.comm.base import Communicator
from compoptim.compress.base import Compressor
from compoptim.errors import UserError
from compoptim.optim.flat import FlatParameters


class DecentralizedOptimizer(ABC):
    """Owns one node's flat parameter/gradient buffers; ``step()`` updates them in place.

    The caller fills ``flat.grads`` (forward/backward) and then calls ``step()``, which
    applies the local rule, gossips with the neighbours and writes the new x.
    """

    def __init__(self, flat: FlatParameters, comm: Communicator, compressor: Compressor) -> None:
        self.flat = flat
        self.comm = comm
        self.compressor = compressor
        self.t = 0

    @abstractmethod
    def step(self) -> None:
        """One iteration t -> t+1 using the gradient in ``flat.grads``."""

    def state_dict(self) -> dict[str, Any]:
        return {"t": self.t}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t = int(state["t"])


def check_range(key: str, value: float, low: float, high: float | None = None,
                low_open: bool = False, high_open: bool = True) -> float:
    """Raise a UserError naming ``key`` unless low <= value (< or <=) high."""
    above = value > low if low_open else value >= low
    below = high is None or (value < high if high_open else value <= high)
    if above and below:
        return float(value)
    lower = f"> {low:g}" if low_open else f">= {low:g}"
    upper = "" if high is None else (f" and < {high:g}" if high_open else f" and <= {high:g}")
    raise UserError(f"{key} must be {lower}{upper}; got {value:g}")
