"""Optimizer names as the config uses them (``optimizer.name``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from compoptim.comm.base import Communicator
from compoptim.compress.base import Compressor
from compoptim.optim.base import DecentralizedOptimizer
from compoptim.optim.dsgd import DSGD
from compoptim.optim.flat import FlatParameters
from compoptim.registry import build_from_registry

OPTIMIZERS: dict[str, Callable[..., DecentralizedOptimizer]] = {"dsgd": DSGD}


def build_optimizer(cfg: Mapping[str, Any], flat: FlatParameters, comm: Communicator,
                    compressor: Compressor) -> DecentralizedOptimizer:
    return build_from_registry("optimizer", OPTIMIZERS, cfg, flat, comm, compressor)
