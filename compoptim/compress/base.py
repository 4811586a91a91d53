"""The Compressor contract.

A payload is one contiguous ``uint8`` tensor with a fixed layout, so the transport moves
raw bytes and never pickles; ``payload_nbytes(numel)`` is exact and known before encoding,
which lets the communicator preallocate its receive buffers once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class Compressor(ABC):
    """Maps a flat float vector to bytes and back.

    Declared properties let algorithms check what they rely on: ``unbiased`` (E[C(x)] = x)
    and ``delta``, the contraction factor in E||C(x) - x||^2 <= (1 - delta)||x||^2.
    """

    name: str
    unbiased: bool
    delta: float

    @abstractmethod
    def payload_nbytes(self, numel: int) -> int:
        """Exact size in bytes of the payload for a vector of ``numel`` elements."""

    @abstractmethod
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Payload (1-D uint8, ``payload_nbytes(x.numel())`` long) for the flat vector x."""

    @abstractmethod
    def decode(self, payload: torch.Tensor, numel: int) -> torch.Tensor:
        """The vector a payload stands for (may be a view of the payload's memory)."""

    def decode_add(self, payload: torch.Tensor, out: torch.Tensor, weight: float) -> None:
        """out += weight * decode(payload); compressors override it to skip a temporary."""
        out.add_(self.decode(payload, out.numel()), alpha=weight)
