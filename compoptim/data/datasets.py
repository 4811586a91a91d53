"""Dataset names as the config uses them (``dataset.name``); each loads whole into tensors."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from compoptim.data.base import Dataset
from compoptim.data.digits import load_digits
from compoptim.data.torchvision_sets import load_mnist_like
from compoptim.registry import build_from_registry

DATASETS: dict[str, Callable[..., Dataset]] = {
    "digits": load_digits,
    "mnist": partial(load_mnist_like, "mnist"),
    "fashion_mnist": partial(load_mnist_like, "fashion_mnist"),
}


def load_dataset(cfg: Mapping[str, Any]) -> Dataset:
    return build_from_registry("dataset", DATASETS, cfg)
