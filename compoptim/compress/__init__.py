"""Compressors: encode a flat vector into one contiguous uint8 payload. torch only, no MPI."""

from compoptim.compress.base import CompressContext, Compressor
from compoptim.compress.cast import Cast
from compoptim.compress.identity import Identity
from compoptim.compress.lowrank import LowRank
from compoptim.compress.metered import Metered
from compoptim.compress.natural import Natural
from compoptim.compress.qsgd import QSGD
from compoptim.compress.randomk import RandomK
from compoptim.compress.registry import COMPRESSORS, build_compressor
from compoptim.compress.sign import ScaledSign
from compoptim.compress.topk import TopK
from compoptim.compress.wrappers import ErrorFeedback, Rescaled

__all__ = [
    "COMPRESSORS", "QSGD", "Cast", "CompressContext", "Compressor", "ErrorFeedback", "Identity", "LowRank",
    "Metered", "Natural", "RandomK", "Rescaled", "ScaledSign", "TopK", "build_compressor",
]
