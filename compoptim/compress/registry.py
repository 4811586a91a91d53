"""Compressor names as the config uses them (``compressor.name``), their facts, and the wrappers.

Facts every entry declares, read by code and tests instead of names:
- ``lossless``: C(x) = x exactly; taken from the class's own ``lossless`` attribute, so it
  is written once;
- ``rescalable``: unbiased with a variance bound omega, so ``rescale: true`` (C/(1 + omega),
  contractive) applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from compoptim.compress.base import CompressContext, Compressor
from compoptim.compress.cast import Cast
from compoptim.compress.gsgd import GSGD
from compoptim.compress.identity import Identity
from compoptim.compress.lowrank import LowRank
from compoptim.compress.natural import Natural
from compoptim.compress.qsgd import QSGD
from compoptim.compress.randomk import RandomK
from compoptim.compress.sign import ScaledSign
from compoptim.compress.topk import TopK
from compoptim.compress.wrappers import ErrorFeedback, Rescaled
from compoptim.errors import UserError
from compoptim.registry import Entry, Registry


def wrapper_settings(entry: Entry) -> list[tuple[str, Any, Any]]:
    """The settings ``build_compressor`` takes besides the factory's: error feedback for
    every compressor, rescaling for the rescalable ones."""
    settings: list[tuple[str, Any, Any]] = [("error_feedback", bool, False)]
    if entry.facts["rescalable"]:
        settings.append(("rescale", bool, False))
    return settings


COMPRESSORS = Registry("compressor", context=("ctx",), facts=("lossless", "rescalable"), extra=wrapper_settings)

COMPRESSORS.register("none", Identity, lossless=Identity.lossless, rescalable=False)
COMPRESSORS.register("cast", Cast, lossless=Cast.lossless, rescalable=False)
COMPRESSORS.register("topk", TopK, lossless=TopK.lossless, rescalable=False)
COMPRESSORS.register("randomk", RandomK, lossless=RandomK.lossless, rescalable=True)
COMPRESSORS.register("qsgd", QSGD, lossless=QSGD.lossless, rescalable=True)
COMPRESSORS.register("gsgd", GSGD, lossless=GSGD.lossless, rescalable=False)
COMPRESSORS.register("sign", ScaledSign, lossless=ScaledSign.lossless, rescalable=False)
COMPRESSORS.register("natural", Natural, lossless=Natural.lossless, rescalable=True)
COMPRESSORS.register("lowrank", LowRank, lossless=LowRank.lossless, rescalable=False)


def build_compressor(cfg: Mapping[str, Any], ctx: CompressContext | None = None) -> Compressor:
    """The compressor ``cfg`` names, for vectors described by ``ctx``.

    ``rescale: true`` (rescalable compressors) divides by 1 + omega to make it contractive;
    ``error_feedback: true`` wraps it in error feedback (outermost).
    """
    settings = dict(cfg)
    error_feedback = bool(settings.pop("error_feedback", False))
    rescale = bool(settings.pop("rescale", False))
    compressor = COMPRESSORS.build(settings, ctx)
    if rescale:
        if not COMPRESSORS[settings["name"]].facts["rescalable"]:
            raise UserError(f"compressor.rescale applies to unbiased compressors "
                            f"({', '.join(COMPRESSORS.with_fact('rescalable'))}); {settings['name']} is not one")
        compressor = Rescaled(compressor)
    if error_feedback:
        compressor = ErrorFeedback(compressor)
    return compressor
