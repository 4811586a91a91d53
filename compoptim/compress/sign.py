"""Scaled sign: one bit per entry plus one scale."""

from __future__ import annotations

import torch

from compoptim.compress.base import Compressor
from compoptim.compress.packing import pack_bits, packed_nbytes, unpack_bits
from compoptim.compress.wire import PayloadBuffer, WireFormat


class ScaledSign(Compressor):
    """C(x) = (||x||_1 / d) * sign(x), sign(0) sent as +1 (Karimireddy et al. 2019, "Error
    Feedback Fixes SignSGD and other Gradient Compression Schemes", ICML).

    Biased; ||C(x) - x||^2 = ||x||^2 - ||x||_1^2/d, so delta = ||x||_1^2/(d ||x||_2^2) >= 1/d
    (the declared worst case). Wire format: the fp32 scale, then 1 bit per entry.
    """

    name = "sign"

    def __init__(self, ctx=None) -> None:
        super().__init__(ctx)
        self._payloads = PayloadBuffer()

    def delta(self, numel: int) -> float:
        return 1.0 / numel

    def _wire(self, numel: int) -> WireFormat:
        return WireFormat([("scale", torch.float32, 1), ("bits", torch.uint8, packed_nbytes(numel, 1))])

    def payload_nbytes(self, numel: int) -> int:
        return self._wire(numel).nbytes

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check_input(x)
        wire = self._wire(x.numel())
        payload = self._payloads.get(wire.nbytes, x.device)
        fields = wire.views(payload)
        torch.linalg.vector_norm(x, ord=1, dtype=torch.float32, out=fields["scale"].view(()))
        fields["scale"].div_(x.numel())
        fields["bits"].copy_(pack_bits((x < 0).to(torch.uint8), 1))
        return payload

    def decode(self, payload: torch.Tensor, numel: int) -> torch.Tensor:
        fields = self._wire(numel).views(payload)
        negative = unpack_bits(fields["bits"], 1, numel)
        # +scale for bit 0, -scale for bit 1
        return (1.0 - 2.0 * negative.to(self.dtype)).mul_(fields["scale"].to(self.dtype))
