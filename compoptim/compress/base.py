"""The Compressor contract.

A payload is one contiguous ``uint8`` tensor with a fixed layout, so the transport moves
raw bytes and never pickles; ``payload_nbytes(numel)`` is exact and known before encoding,
which lets the communicator preallocate its receive buffers once. Multi-byte fields are
laid out widest first, so every field is a properly aligned view of the payload.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class CompressContext:
    """What a compressor knows about the vectors it will see.

    ``layout``: the shapes of the tensors the flat vector concatenates (the model's
    parameters), for per-layer and low-rank compressors; empty means one flat segment.
    ``seed`` / ``rank``: randomness is drawn from generators seeded with them, so a run is
    reproducible; ``rank`` makes the nodes' private draws independent.
    """

    layout: tuple[tuple[int, ...], ...] = ()
    dtype: torch.dtype = torch.float32
    seed: int = 0
    rank: int = 0

    def segments(self, numel: int) -> list[tuple[int, int, tuple[int, ...]]]:
        """(offset, length, shape) of each tensor in a flat vector of ``numel`` entries."""
        if not self.layout:
            return [(0, numel, (numel,))]
        sizes = [math.prod(shape) for shape in self.layout]
        if sum(sizes) != numel:
            raise ValueError(f"compressor layout covers {sum(sizes)} entries but the vector has {numel}")
        offsets = [0, *itertools.accumulate(sizes)][:-1]
        return [(o, n, tuple(s)) for o, n, s in zip(offsets, sizes, self.layout)]


class Compressor(ABC):
    """Maps a flat float vector to bytes and back.

    Declared properties, for algorithms to check what they rely on:
    - ``unbiased``: E[C(x)] = x;
    - ``delta(numel)``: contraction, E||C(x) - x||^2 <= (1 - delta) ||x||^2 (biased ones;
      None when no contraction is guaranteed);
    - ``omega(numel)``: variance, E||C(x) - x||^2 <= omega ||x||^2 (unbiased ones);
    - ``lossless``: C(x) = x exactly (the identity): algorithms skip what only matters for a
      lossy C, and the metering does not sample its error.
    An unbiased compressor scaled by 1/(1 + omega) is contractive with delta = 1/(1 + omega)
    (see ``Rescaled``), which is how CHOCO-type methods use QSGD or random-k.

    Decoding is written once per compressor: ``decode`` or the fused ``decode_add``, each
    defaulting to the other (a dense decode allocates zeros and adds into them).
    """

    name: str
    unbiased: bool = False
    lossless: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.decode is Compressor.decode and cls.decode_add is Compressor.decode_add:
            raise TypeError(f"compressor {cls.__name__} must define decode or decode_add (each defaults to the other)")

    def __init__(self, ctx: CompressContext | None = None) -> None:
        self.ctx = ctx or CompressContext()
        self.dtype = self.ctx.dtype

    def delta(self, numel: int) -> float | None:
        return None

    def omega(self, numel: int) -> float | None:
        return None

    @abstractmethod
    def payload_nbytes(self, numel: int) -> int:
        """Exact size in bytes of the payload for a vector of ``numel`` elements."""

    @abstractmethod
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Payload (1-D uint8, ``payload_nbytes(x.numel())`` long) for the flat vector x."""

    def decode(self, payload: torch.Tensor, numel: int) -> torch.Tensor:
        """The vector a payload stands for (may be a view of the payload's memory)."""
        out = torch.zeros(numel, dtype=self.dtype, device=payload.device)
        self.decode_add(payload, out, 1.0)
        return out

    def decode_scaled(self, payload: torch.Tensor, out: torch.Tensor, weight: float) -> None:
        """out <- weight * decode(payload); ``payload`` may be ``out``'s own bytes (the
        identity on the variable being mixed), which ``mul`` with ``out=`` handles."""
        torch.mul(self.decode(payload, out.numel()), weight, out=out)

    def decode_add(self, payload: torch.Tensor, out: torch.Tensor, weight: float) -> None:
        """out += weight * decode(payload); compressors override it to skip a temporary."""
        out.add_(self.decode(payload, out.numel()), alpha=weight)

    def bits_per_element(self, numel: int) -> float:
        return 8.0 * self.payload_nbytes(numel) / numel

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue bit-exactly (generators, memories)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != self.dtype or x.dim() != 1:
            raise ValueError(f"compressor {self.name} encodes flat {self.dtype} vectors; "
                             f"got {x.dtype} {tuple(x.shape)}")
        return x.contiguous()
