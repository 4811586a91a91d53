"""Casts to a 16-bit float: half the bytes, relative error at most one rounding."""

from __future__ import annotations

import torch

from compoptim.compress.base import CompressContext, Compressor
from compoptim.errors import UserError

# dtype name -> (torch dtype, unit roundoff u: round-to-nearest error |C(x)-x| <= u|x|)
CAST_DTYPES = {"float16": (torch.float16, 2.0**-11), "bfloat16": (torch.bfloat16, 2.0**-8)}


class Cast(Compressor):
    """C(x) = x rounded to ``dtype`` (float16 or bfloat16), 16 bits/entry.

    Biased (deterministic rounding) and contractive with delta = 1 - u^2 for entries in the
    normal range (u = 2^-11 for float16, 2^-8 for bfloat16). float16 saturates at +-65504
    rather than overflowing to infinity; bfloat16 has float32's range.
    """

    name = "cast"

    def __init__(self, ctx: CompressContext | None = None, dtype: str = "float16") -> None:
        super().__init__(ctx)
        if dtype not in CAST_DTYPES:
            raise UserError(f"compressor.dtype must be one of {', '.join(CAST_DTYPES)}; got {dtype}")
        self.wire_dtype, self.unit_roundoff = CAST_DTYPES[dtype]
        self._limit = torch.finfo(self.wire_dtype).max
        self._buffer: dict[tuple[int, torch.device], torch.Tensor] = {}

    def delta(self, numel: int) -> float:
        return 1.0 - self.unit_roundoff**2

    def payload_nbytes(self, numel: int) -> int:
        return 2 * numel

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check_input(x)
        key = (x.numel(), x.device)
        out = self._buffer.get(key)
        if out is None:
            out = self._buffer[key] = torch.empty(x.numel(), dtype=self.wire_dtype, device=x.device)
        out.copy_(x)  # rounds to nearest
        if self.wire_dtype == torch.float16:  # saturate instead of overflowing; NaN stays NaN
            out.nan_to_num_(nan=float("nan"), posinf=self._limit, neginf=-self._limit)
        return out.view(torch.uint8)

    def decode(self, payload: torch.Tensor, numel: int) -> torch.Tensor:
        return payload.view(self.wire_dtype)[:numel].to(self.dtype)

    def decode_add(self, payload: torch.Tensor, out: torch.Tensor, weight: float) -> None:
        out.add_(payload.view(self.wire_dtype), alpha=weight)
