"""Datasets held as tensors, and partitions of the training set across nodes."""

from compoptim.data.base import Dataset
from compoptim.data.datasets import DATASETS, load_dataset
from compoptim.data.loader import ShardLoader
from compoptim.data.partition import PARTITIONS, build_partition, iid_partition, label_histogram

__all__ = ["DATASETS", "PARTITIONS", "Dataset", "ShardLoader", "build_partition", "iid_partition", "label_histogram",
           "load_dataset"]
