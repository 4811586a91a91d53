"""Optimizer names as the config uses them (``optimizer.name``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from compoptim.comm.base import Communicator
from compoptim.optim.adaptive import DecentralizedAdaptive
from compoptim.optim.base import CompressorFactory, DecentralizedOptimizer
from compoptim.optim.beer import BEER
from compoptim.optim.deepsqueeze import DeepSqueeze
from compoptim.optim.docom import DoCoM
from compoptim.optim.flat import FlatParameters
from compoptim.optim.presets import RULE_PRESETS, rule_preset
from compoptim.registry import build_from_registry

OPTIMIZERS: dict[str, Callable[..., DecentralizedOptimizer]] = {
    **{name: rule_preset(name, rule) for name, rule in RULE_PRESETS.items()},
    "deepsqueeze": DeepSqueeze,
    "beer": BEER,
    "docom": DoCoM,
    "damsgrad": partial(DecentralizedAdaptive, kind="amsgrad"),
    "dadagrad": partial(DecentralizedAdaptive, kind="adagrad"),
}
# partial objects keep the class signature, kind included: list the settings explicitly.
for _name in ("damsgrad", "dadagrad"):
    OPTIMIZERS[_name].settings = ("lr", "betas", "eps", "gamma")


def build_optimizer(cfg: Mapping[str, Any], flat: FlatParameters, comm: Communicator,
                    compressors: CompressorFactory) -> DecentralizedOptimizer:
    return build_from_registry("optimizer", OPTIMIZERS, cfg, flat, comm, compressors)
