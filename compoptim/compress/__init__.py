"""Compressors: encode a flat vector into one contiguous uint8 payload. torch only, no MPI."""

from compoptim.compress.base import Compressor
from compoptim.compress.identity import Identity
from compoptim.compress.registry import COMPRESSORS, build_compressor

__all__ = ["COMPRESSORS", "Compressor", "Identity", "build_compressor"]
