"""Payload layouts: named fields at aligned offsets inside one uint8 buffer."""

from __future__ import annotations

import torch

_KEPT_VIEWS = 8  # payloads whose field views a format keeps (a node's send buffer and its neighbours')


class WireFormat:
    """Fields ``(name, dtype, count)`` placed in order, each at an offset aligned to its
    element size (padding, if any, is part of the payload and counted). List wider types
    first and no padding is ever needed."""

    def __init__(self, fields: list[tuple[str, torch.dtype, int]]) -> None:
        self.fields: dict[str, tuple[int, torch.dtype, int]] = {}
        self._spans: list[tuple[str, int, int, torch.dtype]] = []  # (name, start, end, dtype) in bytes
        offset = 0
        for name, dtype, count in fields:
            size = dtype.itemsize
            offset = -(-offset // size) * size
            self.fields[name] = (offset, dtype, count)
            self._spans.append((name, offset, offset + size * count, dtype))
            offset += size * count
        self.nbytes = offset
        self._views: dict[tuple[int, torch.device], tuple[torch.Tensor, dict[str, torch.Tensor]]] = {}

    def views(self, payload: torch.Tensor) -> dict[str, torch.Tensor]:
        """Typed views of every field of ``payload`` (no copies).

        The views of the last few payloads are kept: the hot path decodes the same send and
        receive buffers every round, and building the views costs more than a top-k
        ``index_add_``. A kept entry holds its payload, so its memory cannot be reused while
        kept: another tensor starting at the same address is a view of the same bytes."""
        key = (payload.data_ptr(), payload.device)
        kept = self._views.get(key)
        # Still over the same bytes (a buffer resized in place moves its views' memory too)?
        if kept is not None and self._spans and kept[1][self._spans[0][0]].data_ptr() == key[0] + self._spans[0][1]:
            return kept[1]
        views = {name: payload[start:end].view(dtype) for name, start, end, dtype in self._spans}
        if len(self._views) >= _KEPT_VIEWS:
            self._views.clear()
        self._views[key] = (payload, views)
        return views


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
