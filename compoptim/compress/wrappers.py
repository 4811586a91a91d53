"""Compressor wrappers: a base that forwards to the wrapped compressor, error feedback, and
the unbiased-to-contractive rescaling (metering: ``metered.py``)."""

from __future__ import annotations

from typing import Any

import torch

from compoptim.compress.base import Compressor


class Wrapper(Compressor):
    """Everything of ``inner``: payloads, decoding, declared properties and state; a wrapper
    overrides only what it changes."""

    def __init__(self, inner: Compressor) -> None:
        super().__init__(inner.ctx)
        self.inner = inner
        self.name = inner.name
        self.unbiased = inner.unbiased
        self.lossless = inner.lossless

    def delta(self, numel: int) -> float | None:
        return self.inner.delta(numel)

    def omega(self, numel: int) -> float | None:
        return self.inner.omega(numel)

    def payload_nbytes(self, numel: int) -> int:
        return self.inner.payload_nbytes(numel)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner.encode(x)

    def decode(self, payload: torch.Tensor, numel: int) -> torch.Tensor:
        return self.inner.decode(payload, numel)

    def decode_add(self, payload: torch.Tensor, out: torch.Tensor, weight: float) -> None:
        self.inner.decode_add(payload, out, weight)

    def decode_scaled(self, payload: torch.Tensor, out: torch.Tensor, weight: float) -> None:
        self.inner.decode_scaled(payload, out, weight)

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state)


class ErrorFeedback(Wrapper):
    """Error feedback (Seide et al. 2014; Stich et al. 2018; Karimireddy et al. 2019):

        v = x + e,   send C(v),   e <- v - C(v)

    so what compression drops is added back next time. The memory e (one vector, allocated
    on first use) is in ``state_dict``. With a lossless compressor (the identity) e stays
    exactly 0 and this is a no-op, so ``lossless`` is the inner one's. Payloads and decoding
    are the wrapped compressor's.
    """

    def __init__(self, inner: Compressor) -> None:
        super().__init__(inner)
        self.unbiased = False
        self.memory: torch.Tensor | None = None
        self._sum: torch.Tensor | None = None

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check_input(x)
        if self.memory is None or self.memory.shape != x.shape or self.memory.device != x.device:
            self.memory = torch.zeros_like(x)
            self._sum = torch.empty_like(x)
        # v lives in its own buffer: the payload may be a view of it (identity).
        v = torch.add(x, self.memory, out=self._sum)
        payload = self.inner.encode(v)
        # e = v - C(v) as v plus the payload's decode_add with weight -1: a sparse payload
        # touches only its k entries, instead of a dense decode and a subtraction.
        self.inner.decode_add(payload, self.memory.copy_(v), -1.0)
        return payload

    def state_dict(self) -> dict[str, Any]:
        return {"memory": None if self.memory is None else self.memory.clone(), "inner": self.inner.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        memory = state["memory"]
        if memory is not None:
            self.memory = memory.clone()
            self._sum = torch.empty_like(memory)
        self.inner.load_state_dict(state["inner"])


class Rescaled(Wrapper):
    """C'(x) = C(x) / (1 + omega) for an unbiased C with variance omega: contractive with
    delta = 1/(1 + omega) (Koloskova et al. 2019, CHOCO-SGD, Remark/Table 1). The payload is
    C's; only decoding scales (by 1 when C is lossless, omega = 0)."""

    def __init__(self, inner: Compressor) -> None:
        if not inner.unbiased or inner.omega(1) is None:
            raise ValueError(f"only unbiased compressors with a variance bound can be rescaled; {inner.name} is not")
        super().__init__(inner)
        self.unbiased = False

    def _factor(self, numel: int) -> float:
        return 1.0 / (1.0 + self.inner.omega(numel))

    def delta(self, numel: int) -> float:
        return self._factor(numel)

    def omega(self, numel: int) -> float | None:
        return None  # biased now: contractive instead

    def decode(self, payload: torch.Tensor, numel: int) -> torch.Tensor:
        return self.inner.decode(payload, numel) * self._factor(numel)

    def decode_add(self, payload: torch.Tensor, out: torch.Tensor, weight: float) -> None:
        self.inner.decode_add(payload, out, weight * self._factor(out.numel()))

    def decode_scaled(self, payload: torch.Tensor, out: torch.Tensor, weight: float) -> None:
        # (decode · factor) · weight, in that order, as the decode it stands for
        torch.mul(self.decode(payload, out.numel()), weight, out=out)
