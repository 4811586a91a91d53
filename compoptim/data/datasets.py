"""Dataset names as the config uses them (``dataset.name``); each loads whole into tensors."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from compoptim.data.base import Dataset
from compoptim.data.cifar10 import load_cifar10
from compoptim.data.digits import load_digits
from compoptim.data.shakespeare import load_shakespeare
from compoptim.data.synthetic import load_synthetic
from compoptim.data.torchvision_sets import load_mnist_like
from compoptim.registry import build_from_registry

DATASETS: dict[str, Callable[..., Dataset]] = {
    "digits": load_digits,
    "mnist": partial(load_mnist_like, "mnist"),
    "fashion_mnist": partial(load_mnist_like, "fashion_mnist"),
    "cifar10": load_cifar10,
    "shakespeare": load_shakespeare,
    "synthetic": load_synthetic,
}
# Settings of the partition (read by the trainer), not of the loader.
PARTITION_SETTINGS = ("partition", "classes_per_node", "alpha", "shards_per_node")


def load_dataset(cfg: Mapping[str, Any]) -> Dataset:
    loader_settings = {k: v for k, v in dict(cfg).items() if k not in PARTITION_SETTINGS}
    return build_from_registry("dataset", DATASETS, loader_settings)
