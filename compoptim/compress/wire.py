"""Payload layouts: named fields at aligned offsets inside one uint8 buffer."""

from __future__ import annotations

import torch


class WireFormat:
    """Fields ``(name, dtype, count)`` placed in order, each at an offset aligned to its
    element size (padding, if any, is part of the payload and counted). List wider types
    first and no padding is ever needed."""

    def __init__(self, fields: list[tuple[str, torch.dtype, int]]) -> None:
        self.fields: dict[str, tuple[int, torch.dtype, int]] = {}
        offset = 0
        for name, dtype, count in fields:
            size = torch.empty((), dtype=dtype).element_size()
            offset = -(-offset // size) * size
            self.fields[name] = (offset, dtype, count)
            offset += size * count
        self.nbytes = offset

    def views(self, payload: torch.Tensor) -> dict[str, torch.Tensor]:
        """Typed views of every field of ``payload`` (no copies)."""
        out = {}
        for name, (offset, dtype, count) in self.fields.items():
            size = torch.empty((), dtype=dtype).element_size()
            out[name] = payload[offset : offset + size * count].view(dtype)
        return out


class PayloadBuffer:
    """One reusable payload per (size, device): encode writes into it instead of allocating.

    A payload returned by ``encode`` stays valid until the next ``encode`` of the same
    compressor; algorithms that need two payloads at once use two compressors.
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple[int, torch.device], torch.Tensor] = {}

    def get(self, nbytes: int, device: torch.device) -> torch.Tensor:
        key = (nbytes, device)
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = torch.empty(nbytes, dtype=torch.uint8, device=device)
        return buf
