"""The identity compressor: the float vector's own bytes, zero-copy."""

from __future__ import annotations

import torch

from compoptim.compress.base import CompressContext, Compressor

_KEPT_VIEWS = 8  # receive rows whose float views are kept (a node's neighbours, in flight or not)


class Identity(Compressor):
    """C(x) = x. Payload: the raw IEEE bytes of x in its own dtype (32 bits/entry for fp32)."""

    name = "none"
    unbiased = True
    lossless = True

    def __init__(self, ctx: CompressContext | None = None) -> None:
        super().__init__(ctx)
        self._views: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

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
        # The communicator hands over the same kept receive rows every round: their float
        # views are kept too (building one costs more than adding 64 floats). The kept
        # payload is held, so its memory (and its data pointer) cannot pass to another tensor.
        kept = self._views.get(id(payload))
        if kept is not None and kept[0] is payload and kept[1].numel() == numel and \
                kept[1].data_ptr() == payload.data_ptr():
            return kept[1]
        view = payload.view(self.dtype)[:numel]
        if len(self._views) >= _KEPT_VIEWS:
            self._views.clear()
        self._views[id(payload)] = (payload, view)
        return view

    def decode_scaled(self, payload: torch.Tensor, out: torch.Tensor, weight: float) -> None:
        if payload.data_ptr() == out.data_ptr():  # the variable's own bytes: scale it in place
            out.mul_(weight)
        else:
            torch.mul(self.decode(payload, out.numel()), weight, out=out)
