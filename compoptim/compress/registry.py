"""Compressor names as the config uses them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from compoptim.compress.base import Compressor
from compoptim.compress.identity import Identity
from compoptim.registry import build_from_registry

COMPRESSORS: dict[str, Callable[..., Compressor]] = {"none": Identity}


def build_compressor(cfg: Mapping[str, Any]) -> Compressor:
    return build_from_registry("compressor", COMPRESSORS, cfg)
