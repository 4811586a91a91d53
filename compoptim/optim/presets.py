"""The rule-based algorithms by name: presets of RuleOptimizer (equations in composed.py).

Each name fixes the local rule; the yaml option in conf/optimizer/ sets the published
defaults (gossip, order, step sizes). Settings are listed per family, so a key that does
not belong to the rule is a one-line error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from compoptim.comm.base import Communicator
from compoptim.optim.base import CompressorFactory, DecentralizedOptimizer
from compoptim.optim.composed import RuleOptimizer
from compoptim.optim.flat import FlatParameters
from compoptim.optim.rules import build_rule

COMMUNICATION = ("comm_set", "gossip", "gamma", "gamma_y", "order", "period", "tracking", "l1", "overlap")
RULE_SETTINGS = {
    "sgd": ("momentum", "dampening", "nesterov", "weight_decay"),
    "adam": ("betas", "eps", "weight_decay"),
    "adamw": ("betas", "eps", "weight_decay"),
    "amsgrad": ("betas", "eps", "weight_decay"),
    "adagrad": ("eps", "weight_decay", "lr_decay", "initial_accumulator_value"),
    "heavy_ball": ("beta",),
    "damsco": ("betas", "eps"),
    "dadam": ("betas", "eps"),
}


def rule_preset(name: str, rule: str) -> Callable[..., DecentralizedOptimizer]:
    """The factory for ``optimizer=name``: RuleOptimizer with the local rule ``rule``."""

    def build(flat: FlatParameters, comm: Communicator, compressors: CompressorFactory, lr: float,
              **settings: Any) -> DecentralizedOptimizer:
        rule_settings = {k: v for k, v in settings.items() if k in RULE_SETTINGS[rule]}
        communication = {k: v for k, v in settings.items() if k in COMMUNICATION}
        if "comm_set" in communication:
            communication["comm_set"] = list(communication["comm_set"])
        return RuleOptimizer(flat, comm, compressors, lr, build_rule(rule, flat.params, rule_settings),
                             name=name, **communication)

    build.settings = ("lr", *RULE_SETTINGS[rule], *COMMUNICATION)
    build.__name__ = name
    return build


# name -> local rule. dsgd, choco_sgd, gt_dsgd, local_sgd and the allreduce baselines are
# presets of the same rules (conf/optimizer/<name>.yaml sets gossip/order/tracking).
RULE_PRESETS = {
    "sgd": "sgd", "dsgd": "sgd", "choco_sgd": "sgd", "gt_dsgd": "sgd", "local_sgd": "sgd", "allreduce_sgd": "sgd",
    "adam": "adam", "adamw": "adamw", "amsgrad": "amsgrad", "adagrad": "adagrad", "allreduce_adam": "adam",
    # Liu et al. 2025 (DAMSCo, DaSHCo) and Yan et al. 2023 (CDProxSGT): CHOCO-compressed x
    # (and tracker), see docs/algorithms.md for their equations.
    "damsco": "damsco", "dashco": "heavy_ball", "cdproxsgt": "sgd",
    # Nazari et al. 2019 (DADAM: combine-then-adapt Adam-type); Singh et al. 2021 (SQuARM-SGD:
    # Nesterov momentum, CHOCO gossip every `period` steps).
    "dadam": "dadam", "squarm_sgd": "sgd",
}
