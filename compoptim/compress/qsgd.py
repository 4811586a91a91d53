"""QSGD: stochastic quantization to s levels per bucket, bit-packed."""

from __future__ import annotations

import math

import torch

from compoptim.compress.base import CompressContext, Compressor
from compoptim.compress.packing import byte_table, pack_bits, packed_nbytes, unpack_bits
from compoptim.compress.randomness import DeviceGenerators, SavesGenerators, derived_seed
from compoptim.compress.wire import PayloadBuffer, WireFormat
from compoptim.errors import UserError

# The largest s: every level 0..s must be exact in float32 (24-bit significand), and a code
# (level bits + sign) fits the int32 the packing works in.
MAX_LEVELS = 2**24 - 1


class QSGD(SavesGenerators, Compressor):
    """Alistarh et al. 2017, "QSGD: Communication-Efficient SGD via Gradient Quantization and
    Encoding", NeurIPS. Per bucket v of ``bucket_size`` entries (0: the whole vector):

        C(v)_i = ||v||_2 * sign(v_i) * l_i / s,   l_i = floor(s|v_i|/||v||_2 + u_i),  u_i ~ U[0, 1)

    Unbiased, omega = min(d/s^2, sqrt(d)/s) with d the bucket size; ``compressor.rescale=true``
    divides by 1 + omega (contractive). Wire format: one fp32 norm per bucket, then per entry
    ceil(log2(s+1)) level bits plus a sign bit, packed (s = 7: 4 bits/entry; s = 1: 2
    bits/entry). The rounding draws come from this node's own generator (seeded with the run
    seed and the node), so nodes draw independently.
    """

    name = "qsgd"
    unbiased = True

    def __init__(self, ctx: CompressContext | None = None, levels: int = 7, bucket_size: int = 512) -> None:
        super().__init__(ctx)
        if not 1 <= levels <= MAX_LEVELS:
            raise UserError(f"compressor.levels must be >= 1 and <= {MAX_LEVELS} (quantization levels s; above, "
                            f"float32 cannot hold every level exactly); got {levels}")
        if bucket_size < 0:
            raise UserError(f"compressor.bucket_size must be >= 1, or 0 for the whole vector; got {bucket_size}")
        self.levels, self.bucket_size = levels, bucket_size
        self.level_bits = math.ceil(math.log2(levels + 1))
        self.bits = self.level_bits + 1
        self.generators = DeviceGenerators(derived_seed(self.ctx.seed, self.ctx.rank, 0x51534744))
        self._payloads = PayloadBuffer()
        self._padded: dict[tuple, torch.Tensor] = {}

    def _bucket(self, numel: int) -> int:
        return min(numel, self.bucket_size) if self.bucket_size else numel

    def omega(self, numel: int) -> float:
        d, s = self._bucket(numel), self.levels
        return min(d / s**2, math.sqrt(d) / s)

    def _wire(self, numel: int) -> WireFormat:
        buckets = -(-numel // self._bucket(numel))
        return WireFormat([("norms", torch.float32, buckets), ("codes", torch.uint8, packed_nbytes(numel, self.bits))])

    def payload_nbytes(self, numel: int) -> int:
        return self._wire(numel).nbytes

    def _buckets(self, x: torch.Tensor) -> torch.Tensor:
        """x as rows of one bucket each, the last zero-padded (a copy only when padding is needed)."""
        bucket = self._bucket(x.numel())
        rows = -(-x.numel() // bucket)
        if rows * bucket == x.numel():
            return x.view(rows, bucket)
        # Reused across steps: only the prefix is rewritten, the padding stays zero.
        key = (rows * bucket, x.dtype, x.device)
        padded = self._padded.get(key)
        if padded is None:
            padded = self._padded[key] = torch.zeros(rows * bucket, dtype=x.dtype, device=x.device)
        padded[: x.numel()].copy_(x)
        return padded.view(rows, bucket)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check_input(x)
        n = x.numel()
        wire = self._wire(n)
        payload = self._payloads.get(wire.nbytes, x.device)
        fields = wire.views(payload)
        rows = self._buckets(x)
        # The norm travels as fp32; the levels are computed with that same rounded norm (in
        # the input's dtype, also float64), so encoder and decoder agree.
        fields["norms"].copy_(torch.linalg.vector_norm(rows, dim=1))
        norms = fields["norms"].to(rows.dtype)
        scale = torch.where(norms > 0, self.levels / norms, torch.zeros_like(norms)).unsqueeze(1)
        noise = torch.rand(rows.shape, generator=self.generators.get(x.device), device=x.device, dtype=rows.dtype)
        # int32 codes: level_bits + 1 may exceed a byte (s >= 128), and pack_bits takes any width
        levels = (rows.abs() * scale).add_(noise).floor_().clamp_(max=self.levels).to(torch.int32)
        codes = levels.view(-1)[:n] | ((x < 0).to(torch.int32) << self.level_bits)
        fields["codes"].copy_(pack_bits(codes, self.bits))
        return payload

    def decode(self, payload: torch.Tensor, numel: int) -> torch.Tensor:
        fields = self._wire(numel).views(payload)
        values = self._signed_levels(fields["codes"], numel)
        scale = fields["norms"].to(self.dtype) / self.levels  # per bucket
        bucket = self._bucket(numel)
        full = numel // bucket
        values[: full * bucket].view(full, bucket).mul_(scale[:full].unsqueeze(1))
        if full * bucket < numel:
            values[full * bucket :].mul_(scale[full])
        return values

    def _signed_levels(self, packed: torch.Tensor, numel: int) -> torch.Tensor:
        """sign * level per entry: a table gather per byte when codes tile a byte, else unpacking."""
        if 8 % self.bits == 0:
            table = byte_table(self.bits, self._code_value, self.dtype, packed.device)
            return table[packed.long()].view(-1)[:numel]
        return self._code_value(unpack_bits(packed, self.bits, numel)).to(self.dtype)

    def _code_value(self, codes: torch.Tensor) -> torch.Tensor:
        levels = (codes & ((1 << self.level_bits) - 1)).float()
        return torch.where(codes >> self.level_bits == 1, -levels, levels)
