"""Compressor names as the config uses them (``compressor.name``), plus the wrappers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from compoptim.compress.base import CompressContext, Compressor
from compoptim.compress.cast import Cast
from compoptim.compress.identity import Identity
from compoptim.compress.lowrank import LowRank
from compoptim.compress.natural import Natural
from compoptim.compress.qsgd import QSGD
from compoptim.compress.randomk import RandomK
from compoptim.compress.sign import ScaledSign
from compoptim.compress.topk import TopK
from compoptim.compress.wrappers import ErrorFeedback, Rescaled
from compoptim.errors import UserError
from compoptim.registry import build_from_registry

COMPRESSORS: dict[str, Callable[..., Compressor]] = {
    "none": Identity,
    "cast": Cast,
    "topk": TopK,
    "randomk": RandomK,
    "qsgd": QSGD,
    "sign": ScaledSign,
    "natural": Natural,
    "lowrank": LowRank,
}


def build_compressor(cfg: Mapping[str, Any], ctx: CompressContext | None = None) -> Compressor:
    """The compressor ``cfg`` names, for vectors described by ``ctx``.

    ``rescale: true`` (unbiased compressors) divides by 1 + omega to make it contractive;
    ``error_feedback: true`` wraps it in error feedback (outermost).
    """
    settings = dict(cfg)
    error_feedback = bool(settings.pop("error_feedback", False))
    rescale = bool(settings.pop("rescale", False))
    compressor = build_from_registry("compressor", COMPRESSORS, settings, ctx)
    if rescale:
        if not compressor.unbiased or compressor.name == "none":
            raise UserError(f"compressor.rescale applies to unbiased compressors (randomk, qsgd, natural); "
                            f"{settings.get('name')} is not one")
        compressor = Rescaled(compressor)
    if error_feedback:
        compressor = ErrorFeedback(compressor)
    return compressor
