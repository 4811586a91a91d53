"""Model names as the config uses them (``model=<name>``): each class's settings are its
constructor's parameters after the dataset's ``input_shape`` and ``num_classes``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from compoptim.cores import memory_shortfall
from compoptim.errors import UserError
from compoptim.models.base import Model
from compoptim.models.char_gpt import CharGPT
from compoptim.models.cnn1d import CNN1d
from compoptim.models.lenet5 import LeNet5
from compoptim.models.logreg import LogReg
from compoptim.models.mlp import MLP
from compoptim.models.resnet import FixupResNet20, ResNet18
from compoptim.registry import Registry

MODELS = Registry("model", context=("input_shape", "num_classes"))
MODELS.register("lenet5", LeNet5)
MODELS.register("mlp", MLP)
MODELS.register("logreg", LogReg)
MODELS.register("cnn1d", CNN1d)
MODELS.register("resnet20", FixupResNet20)
MODELS.register("resnet18", ResNet18)
MODELS.register("char_gpt", CharGPT)


def build_model(cfg: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int) -> Model:
    """The model ``cfg`` names; settings that make it too large to hold are refused first."""
    check_size(cfg, input_shape, num_classes)
    return MODELS.build(cfg, input_shape, num_classes)


def check_size(cfg: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int) -> None:
    """One line if the model's tensors could not exist (a shape past int64) or not fit in this
    machine's memory (``model.hidden=[1000000000]``), instead of the allocator's traceback
    or the kernel's OOM kill. Built on the meta device: shapes only, nothing allocated, no
    random draws (the real build's parameters are the same)."""
    try:
        with torch.device("meta"):
            shapes = MODELS.build(cfg, input_shape, num_classes)
    except RuntimeError as exc:  # the only failure of a build with nothing allocated: an impossible shape
        raise UserError(f"model={cfg['name']}: these settings give a tensor too large to exist "
                        f"({str(exc).splitlines()[0]})") from None
    tensors = [*shapes.parameters(), *shapes.buffers()]
    numel = sum(t.numel() for t in tensors)
    nbytes = sum(t.numel() * t.element_size() for t in tensors)
    short = memory_shortfall(nbytes)
    if short:
        raise UserError(f"model={cfg['name']} with these settings has {numel:,} parameters and buffers {short}")
