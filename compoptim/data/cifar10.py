"""CIFAR-10 through torchvision's own loader (the real python-pickle batches on disk)."""

from __future__ import annotations

from pathlib import Path

import torch

from compoptim.data.base import Dataset
from compoptim.errors import UserError

_MEAN = (0.4914, 0.4822, 0.4465)
_STD = (0.2470, 0.2435, 0.2616)
_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
          "batches.meta")


def load_cifar10(root: str = "data", download: bool = False, augment: bool = True) -> Dataset:
    """The python-version batches in ``<root>/cifar-10-batches-py`` (``download=true`` fetches
    them), normalized per channel. ``augment``: the training batches get ``random_crop_flip``
    (random crop with 4-pixel padding + horizontal flip, batched on the training device)."""
    import torchvision.datasets as tvd

    folder = Path(root).expanduser().resolve() / "cifar-10-batches-py"
    try:
        train = tvd.CIFAR10(root=str(Path(root).expanduser()), train=True, download=download)
        test = tvd.CIFAR10(root=str(Path(root).expanduser()), train=False, download=download)
    except RuntimeError as exc:
        missing = [f for f in _FILES if not (folder / f).exists()]
        why = "download failed (no network?)" if download else "files not found"
        raise UserError(f"dataset=cifar10: {why}; looked in {folder} for {', '.join(missing) or 'the batches'}; "
                        f"put the python-version batches there{'' if download else ' or set dataset.download=true'}"
                        ) from exc
    return Dataset("cifar10", _normalize(train.data), torch.tensor(train.targets, dtype=torch.int64),
                   _normalize(test.data), torch.tensor(test.targets, dtype=torch.int64), num_classes=10,
                   augment=random_crop_flip if augment else None)


def _normalize(images) -> torch.Tensor:
    x = torch.from_numpy(images).to(torch.float32).div_(255.0).permute(0, 3, 1, 2)
    mean = torch.tensor(_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(_STD).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Batched CIFAR augmentation as tensor ops: a random shift within a ``padding``-pixel
    zero border (random crop) and a horizontal flip with probability 1/2, per image."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device).view(n, 1)
    across = torch.arange(w, device=x.device).expand(n, w)
    across = torch.where(flip, w - 1 - across, across)  # read the crop right to left
    rows = (dy.view(n, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = (dx.view(n, 1) + across).view(n, 1, 1, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    channels = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[batch, channels, rows, cols]
