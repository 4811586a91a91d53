"""Dataset names as the config uses them (``dataset=<name>``); each loads whole into tensors.

A loader's parameters are its settings. The dataset node also holds the partition
(``dataset.partition``, its own config group ``dataset/partition``), which the trainer
builds from the loaded labels, so every dataset's schema gets that one extra field. It is
MISSING in the schema, not None: conf/config.yaml lists the partition before the dataset
(Hydra resolves a defaults list last to first, so only then can a dataset's yaml override
the choice, as synthetic's does), and a MISSING value merged later keeps the chosen node.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import MISSING

from compoptim.data.base import Dataset
from compoptim.data.cifar10 import load_cifar10
from compoptim.data.digits import load_digits
from compoptim.data.mnist1d import load_mnist1d
from compoptim.data.shakespeare import load_shakespeare
from compoptim.data.synthetic import load_synthetic
from compoptim.data.torchvision_sets import load_fashion_mnist, load_mnist
from compoptim.errors import UserError
from compoptim.registry import Registry

DATASETS = Registry("dataset", extra=lambda entry: [("partition", Any, MISSING)])
DATASETS.register("digits", load_digits)
DATASETS.register("mnist", load_mnist)
DATASETS.register("fashion_mnist", load_fashion_mnist)
DATASETS.register("mnist1d", load_mnist1d)
DATASETS.register("cifar10", load_cifar10)
DATASETS.register("shakespeare", load_shakespeare)
DATASETS.register("synthetic", load_synthetic)


def load_dataset(cfg: Mapping[str, Any]) -> Dataset:
    """The dataset ``cfg['name']`` with its settings; a ``partition`` key is not the loader's."""
    data = DATASETS.build({k: v for k, v in cfg.items() if k != "partition"})
    for part, y in (("training", data.y_train), ("test", data.y_test)):
        if len(y) == 0:  # e.g. a test_fraction so small that no sample is held out
            raise UserError(f"dataset={cfg['name']} with these settings has no {part} samples; "
                            f"choose settings that leave some")
    return data
