"""Natural compression: stochastic rounding to a power of two, sign + exponent only."""

from __future__ import annotations

import torch

from compoptim.compress.base import CompressContext, Compressor
from compoptim.compress.randomness import DeviceGenerators, SavesGenerators, derived_seed
from compoptim.compress.wire import PayloadBuffer, WireFormat

# Exponent codes 1..127 cover the 127 powers of two below the vector's top exponent E:
# 2^(E-127+c) for code c; code 0 is zero. 7 bits + sign = one byte per entry.
_SPAN = 127


class Natural(SavesGenerators, Compressor):
    """Horváth et al. 2019, "Natural Compression for Distributed Deep Learning":
    for 2^a <= |x_i| < 2^(a+1), C(x)_i = sign(x_i) 2^(a+1) with probability |x_i|/2^a - 1,
    else sign(x_i) 2^a. Unbiased, omega = 1/8; ``compressor.rescale=true`` divides by 9/8.

    Wire format: a 16-bit top exponent E (|x_i| < 2^E for all i), then one byte per entry:
    sign bit + 7-bit exponent code (the paper's 9 bits, with the exponent relative to E).
    Entries below 2^(E-126) (more than 2^126 times smaller than the largest) are rounded
    stochastically between 0 and 2^(E-126), which keeps the rounding unbiased. A float64
    vector is rounded to float32 first.
    """

    name = "natural"
    unbiased = True

    def __init__(self, ctx: CompressContext | None = None) -> None:
        super().__init__(ctx)
        self.generators = DeviceGenerators(derived_seed(self.ctx.seed, self.ctx.rank, 0x4E415455))
        self._payloads = PayloadBuffer()

    def omega(self, numel: int) -> float:
        return 1.0 / 8.0

    def _wire(self, numel: int) -> WireFormat:
        return WireFormat([("top", torch.int16, 1), ("codes", torch.uint8, numel)])

    def payload_nbytes(self, numel: int) -> int:
        return self._wire(numel).nbytes

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check_input(x)
        # The rounding works on float32 bits: a float64 vector is first rounded to float32
        # (relative change <= 2^-24, far below the power-of-two rounding's own spread).
        x = x.to(torch.float32)
        wire = self._wire(x.numel())
        payload = self._payloads.get(wire.nbytes, x.device)
        fields = wire.views(payload)
        # |x| = 2^(f-127) (1 + mantissa/2^23) for a normal float with biased exponent f; rounding
        # up to 2^(f-126) happens with probability mantissa/2^23: compare with a uniform 23-bit draw.
        bits = x.view(torch.int32)
        biased = (bits >> 23) & 0xFF
        top = int(biased.max().item()) if x.numel() else 0
        fields["top"].fill_(top - 126)  # E: every |x| < 2^E
        draws = torch.randint(0, 1 << 23, x.shape, generator=self.generators.get(x.device), device=x.device,
                              dtype=torch.int32)
        up = (draws < (bits & 0x7FFFFF)).to(torch.int32)
        subnormal = biased == 0  # zeros and subnormals: no implicit leading 1
        code = biased.add_(up).sub_(top - 126)  # code c <-> 2^(E - 127 + c); c = 127: 2^E
        tiny = (code < 1).logical_or_(subnormal)
        if bool(tiny.any()):
            # Below 2^(E-126): 2^(E-126) with probability |x| / 2^(E-126), else 0 (unbiased).
            ratio = torch.ldexp(x.abs(), torch.tensor(126 - (top - 126), device=x.device))
            tiny_up = (draws.to(torch.float32) / (1 << 23)) < ratio
            code = torch.where(tiny, tiny_up.to(torch.int32), code)
        fields["codes"].copy_(code.to(torch.uint8) | ((bits < 0).to(torch.uint8) << 7))
        return payload

    def decode(self, payload: torch.Tensor, numel: int) -> torch.Tensor:
        fields = self._wire(numel).views(payload)
        codes = fields["codes"]
        c = (codes & 0x7F).to(torch.int32)
        floor = int(fields["top"].item()) - _SPAN + 1
        magnitude = torch.ldexp(torch.ones(numel, dtype=self.dtype, device=payload.device), c + (floor - 1))
        magnitude.masked_fill_(c == 0, 0.0)
        return torch.where(codes >= 0x80, -magnitude, magnitude)
