"""Scaled sign: one bit per entry plus one scale."""

from __future__ import annotations

import torch

from compoptim.compress.base import CompressContext, Compressor
from compoptim.compress.packing import byte_table, pack_bits, packed_nbytes
from compoptim.compress.wire import PayloadBuffer, WireFormat


class ScaledSign(Compressor):
    """C(x) = (||x||_1 / d) * sign(x), sign(0) sent as +1 (Karimireddy et al. 2019, "Error
    Feedback Fixes SignSGD and other Gradient Compression Schemes", ICML).

    Biased; ||C(x) - x||^2 = ||x||^2 - ||x||_1^2/d, so delta = ||x||_1^2/(d ||x||_2^2) >= 1/d
    (the declared worst case). Wire format: the fp32 scale, then 1 bit per entry.
    """

    name = "sign"

    def __init__(self, ctx: CompressContext | None = None) -> None:
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
        # in x's dtype (float64 too), rounded to the fp32 that travels
        fields["scale"].copy_(torch.linalg.vector_norm(x, ord=1).div_(x.numel()))
        fields["bits"].copy_(pack_bits((x < 0).to(torch.uint8), 1))
        return payload

    def _signs(self, payload: torch.Tensor, numel: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(+1/-1 per entry, the scale): one table gather per packed byte."""
        fields = self._wire(numel).views(payload)
        table = byte_table(1, _sign_of_bit, self.dtype, payload.device)
        return table[fields["bits"].long()].view(-1)[:numel], fields["scale"].to(self.dtype)

    def decode(self, payload: torch.Tensor, numel: int) -> torch.Tensor:
        signs, scale = self._signs(payload, numel)
        return signs.mul_(scale)

    def decode_add(self, payload: torch.Tensor, out: torch.Tensor, weight: float) -> None:
        signs, scale = self._signs(payload, out.numel())
        out.addcmul_(signs, scale, value=weight)


def _sign_of_bit(bits: torch.Tensor) -> torch.Tensor:
    return 1.0 - 2.0 * bits.float()  # bit 0: +1, bit 1: -1
