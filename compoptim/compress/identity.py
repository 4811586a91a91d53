"""The identity compressor: the float vector's own bytes, zero-copy."""

from __future__ import annotations

import torch

from compoptim.compress.base import Compressor


class Identity(Compressor):
    """C(x) = x. Payload: the raw IEEE bytes of x in its own dtype (4 bytes/entry for fp32)."""

    name = "none"
    unbiased = True
    delta = 1.0

    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        self.dtype = dtype
        self._itemsize = torch.empty((), dtype=dtype).element_size()

    def payload_nbytes(self, numel: int) -> int:
        return numel * self._itemsize

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        # A view, not a copy: the caller keeps x unchanged until the exchange completes.
        return x.contiguous().view(torch.uint8)

    def decode(self, payload: torch.Tensor, numel: int) -> torch.Tensor:
        return payload.view(self.dtype)[:numel]
