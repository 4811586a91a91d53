"""The identity compressor: the float vector's own bytes, zero-copy."""

from __future__ import annotations

import torch

from compoptim.compress.base import Compressor


class Identity(Compressor):
    """C(x) = x. Payload: the raw IEEE bytes of x in its own dtype (32 bits/entry for fp32)."""

    name = "none"
    unbiased = True
    lossless = True

    def delta(self, numel: int) -> float:
        return 1.0

    def omega(self, numel: int) -> float:
        return 0.0

    def payload_nbytes(self, numel: int) -> int:
        return numel * self.dtype.itemsize

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        # A view, not a copy: the caller keeps x unchanged until the exchange completes.
        return self._check_input(x).view(torch.uint8)

    def decode(self, payload: torch.Tensor, numel: int) -> torch.Tensor:
        return payload.view(self.dtype)[:numel]
