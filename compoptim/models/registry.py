"""Model names as the config uses them (``model=<name>``): each class's settings are its
constructor's parameters after the dataset's ``input_shape`` and ``num_classes``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from compoptim.models.base import Model
from compoptim.models.char_gpt import CharGPT
from compoptim.models.lenet5 import LeNet5
from compoptim.models.logreg import LogReg
from compoptim.models.mlp import MLP
from compoptim.models.resnet import FixupResNet20, ResNet18
from compoptim.registry import Registry

MODELS = Registry("model", context=("input_shape", "num_classes"))
MODELS.register("lenet5", LeNet5)
MODELS.register("mlp", MLP)
MODELS.register("logreg", LogReg)
MODELS.register("resnet20", FixupResNet20)
MODELS.register("resnet18", ResNet18)
MODELS.register("char_gpt", CharGPT)


def build_model(cfg: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int) -> Model:
    return MODELS.build(cfg, input_shape, num_classes)
