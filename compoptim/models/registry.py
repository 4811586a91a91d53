"""Model names as the config uses them (``model.name``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from compoptim.models.char_gpt import CharGPT
from compoptim.models.lenet5 import LeNet5
from compoptim.models.logreg import LogReg
from compoptim.models.mlp import MLP
from compoptim.models.resnet import FixupResNet20, ResNet18
from compoptim.registry import build_from_registry

MODELS: dict[str, Callable[..., nn.Module]] = {
    "lenet5": LeNet5, "mlp": MLP, "logreg": LogReg, "resnet20": FixupResNet20, "resnet18": ResNet18,
    "char_gpt": CharGPT,
}


def build_model(cfg: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return build_from_registry("model", MODELS, cfg, input_shape, num_classes)
