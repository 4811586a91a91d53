"""Datasets held as tensors, and partitions of the training set across nodes."""

from compoptim.data.base import Dataset
from compoptim.data.datasets import DATASETS, load_dataset
from compoptim.data.loader import ShardLoader
from compoptim.data.partition import iid_partition

__all__ = ["DATASETS", "Dataset", "ShardLoader", "iid_partition", "load_dataset"]
