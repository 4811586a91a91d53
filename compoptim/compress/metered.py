"""Metering: the time spent encoding, and a sampled relative compression error.

A wrapper rather than a communicator method, so every encode an algorithm makes is metered
the same way whatever it sends it with, and compress/ stays free of comm/: the counters are
any object with the attributes ``Metered`` adds to (the communicator's ``TrafficCounters``).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from compoptim.compress.base import Compressor
from compoptim.compress.wrappers import Wrapper

# ||C(x) - x|| / ||x|| is measured on one encode in this many (it costs a decode and two
# norms, kept out of the compress time).
ERROR_SAMPLE_EVERY = 16


class Metered(Wrapper):
    """``inner``, with each encode timed into ``counters.compress_time_s`` and the relative
    error ||C(x) - x|| / ||x|| sampled on every ``ERROR_SAMPLE_EVERY``-th encode into
    ``counters.error_sum`` / ``counters.error_count``.

    The encodes are counted in ``counters.encode_count``, which all the compressors of one
    node share: the sampling pattern is per node, not per compressor. A lossless inner
    compressor is never sampled (its error is 0). Wrap outermost (over error feedback):
    the error is then that of what is sent against the x the algorithm passed in. Payloads,
    decoding, declared properties and state are the inner compressor's.
    """

    def __init__(self, inner: Compressor, counters: Any) -> None:
        super().__init__(inner)
        self.counters = counters
        self._error: torch.Tensor | None = None  # x - C(x), kept: no model-sized allocation per sample

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        counters = self.counters
        start = time.perf_counter()
        payload = self.inner.encode(x)
        counters.compress_time_s += time.perf_counter() - start
        if counters.encode_count % ERROR_SAMPLE_EVERY == 0 and not self.lossless:
            norm = torch.linalg.vector_norm(x).item()
            if norm > 0:
                # x - C(x) as x plus the payload's decode_add with weight -1 (sparse payloads touch k entries)
                if self._error is None or self._error.shape != x.shape or self._error.device != x.device or \
                        self._error.dtype != x.dtype:
                    self._error = torch.empty_like(x)
                self.inner.decode_add(payload, self._error.copy_(x), -1.0)
                counters.error_sum += torch.linalg.vector_norm(self._error).item() / norm
                counters.error_count += 1
        counters.encode_count += 1
        return payload
