"""The in-memory dataset value every loader returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

TASKS = ("classification", "regression", "language")


@dataclass(frozen=True)
class Dataset:
    """Inputs and targets, split into train and test, held whole as tensors.

    ``task``: classification (integer labels, cross-entropy, accuracy), regression (float
    targets, mean squared error; accuracy is not defined) or language (a sequence of
    character ids per sample, next-character cross-entropy and accuracy). ``strata``: what
    non-iid partitions split by, one integer per training sample (the labels, or for the
    synthetic problems the group whose local optimum generated the sample); for language,
    the last target character. ``augment``: a batched transform ``(x, generator) -> x`` the
    loader applies to every training batch on the training device (CIFAR's random crop and
    flip), carried by the dataset so the trainer needs no knowledge of which one.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    task: str = "classification"
    strata: torch.Tensor | None = None
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None

    @property
    def partition_labels(self) -> torch.Tensor:
        if self.strata is not None:
            return self.strata
        return self.y_train[:, -1] if self.task == "language" else self.y_train

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])
