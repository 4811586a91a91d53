"""gsgd_b: BEER's b-bit quantizer, QSGD on the whole vector scaled to be contractive."""

from __future__ import annotations

from compoptim.compress.base import CompressContext
from compoptim.compress.qsgd import MAX_LEVELS, QSGD
from compoptim.compress.wrappers import Rescaled
from compoptim.errors import UserError

# s = 2^(b-1) must stay a level QSGD can hold exactly (2^24 - 1)
MAX_BITS = MAX_LEVELS.bit_length()


class GSGD(Rescaled):
    """The compressor of Zhao et al. 2022 (BEER, NeurIPS, Section 5; from Alistarh et al.'s
    QSGD), with s = 2^(b-1) and d the vector's length:

        C(x)_i = ||x||_2 / (s tau) * sign(x_i) * floor(s |x_i| / ||x||_2 + u_i),  u_i ~ U[0, 1)
        tau = 1 + min(d/s^2, sqrt(d)/s)

    i.e. QSGD with s levels over the whole vector (bucket 0) divided by 1 + omega, its
    variance bound: biased and contractive with delta = 1/tau. (The authors' ``gsgd`` code
    draws the dither from a standard normal instead of U[0, 1); that is not the operator the
    paper analyses, nor b bits, so the paper's U[0, 1) is used.)

    Wire format, honest: one fp32 norm, then per entry a sign bit and ceil(log2(s + 1)) = b
    level bits (the level s itself is reached when one entry holds almost all the norm), so
    b + 1 bits per entry where the paper counts b.
    """

    def __init__(self, ctx: CompressContext | None = None, bits: int = 5) -> None:
        if not 1 <= bits <= MAX_BITS:
            raise UserError(f"compressor.bits must be >= 1 and <= {MAX_BITS} (b of gsgd_b: 2^(b-1) levels); "
                            f"got {bits}")
        super().__init__(QSGD(ctx, levels=2 ** (bits - 1), bucket_size=0))
        self.name = "gsgd"
