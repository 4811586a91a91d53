"""scikit-learn's bundled 8x8 digits, upsampled to 28x28 so MNIST-shaped models fit.

Embedded in the scikit-learn wheel, so it works offline. The train/test split is fixed
(stratified, its own seed) so test accuracy is comparable across runs and seeds.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from compoptim.data.base import Dataset
from compoptim.errors import UserError

SIDE = 28


def load_digits(test_fraction: float = 0.2, split_seed: int = 0) -> Dataset:
    """The 1797 images, ``test_fraction`` of each class held out for testing (drawn with
    ``split_seed``); works offline."""
    from sklearn.datasets import load_digits as sk_load_digits

    if not 0.0 < test_fraction < 1.0:
        raise UserError(f"dataset.test_fraction must be > 0 and < 1 (the share of each class held out for "
                        f"testing); got {test_fraction:g}")
    if split_seed < 0:
        raise UserError(f"dataset.split_seed must be >= 0; got {split_seed}")
    bunch = sk_load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    images = F.interpolate(images, size=(SIDE, SIDE), mode="bilinear", align_corners=False)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    test_idx = _stratified_test_indices(bunch.target, test_fraction, split_seed)
    is_test = torch.zeros(len(labels), dtype=torch.bool)
    is_test[test_idx] = True
    train_x, test_x = images[~is_test], images[is_test]
    mean, std = train_x.mean(), train_x.std()
    return Dataset(
        name="digits",
        x_train=(train_x - mean) / std,
        y_train=labels[~is_test],
        x_test=(test_x - mean) / std,
        y_test=labels[is_test],
        num_classes=10,
    )


def _stratified_test_indices(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        picked.append(idx[: round(fraction * len(idx))])
    return np.sort(np.concatenate(picked))
