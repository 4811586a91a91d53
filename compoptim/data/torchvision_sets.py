"""MNIST and Fashion-MNIST through torchvision's own loaders (real IDX files on disk)."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import torch

from compoptim.data.base import Dataset
from compoptim.errors import UserError

# name -> (torchvision class name, folder torchvision uses under root, mean, std)
_SPECS = {
    "mnist": ("MNIST", "MNIST", 0.1307, 0.3081),
    "fashion_mnist": ("FashionMNIST", "FashionMNIST", 0.2860, 0.3530),
}
_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def load_mnist(root: str = "data", download: bool = False) -> Dataset:
    """MNIST: the IDX files in ``<root>/MNIST/raw`` (``download=true`` fetches them)."""
    return load_mnist_like("mnist", root, download)


def load_fashion_mnist(root: str = "data", download: bool = False) -> Dataset:
    """Fashion-MNIST: the IDX files in ``<root>/FashionMNIST/raw`` (``download=true`` fetches them)."""
    return load_mnist_like("fashion_mnist", root, download)


def load_mnist_like(name: str, root: str, download: bool) -> Dataset:
    import torchvision.datasets as tvd

    cls_name, folder, mean, std = _SPECS[name]
    cls = getattr(tvd, cls_name)
    raw = Path(root).expanduser().resolve() / folder / "raw"
    _gunzip_missing(raw)
    try:
        train = cls(root=str(Path(root).expanduser()), train=True, download=download)
        test = cls(root=str(Path(root).expanduser()), train=False, download=download)
    except RuntimeError as exc:
        missing = [f for f in _FILES if not (raw / f).exists()]
        why = "download failed (no network?)" if download else "files not found"
        raise UserError(
            f"dataset={name}: {why}; looked in {raw} for {', '.join(missing) or 'all four IDX files'}; "
            f"put the IDX files (optionally .gz) there{'' if download else ' or set dataset.download=true'}"
        ) from exc
    return Dataset(
        name=name,
        x_train=_normalize(train.data, mean, std),
        y_train=train.targets.to(torch.int64),
        x_test=_normalize(test.data, mean, std),
        y_test=test.targets.to(torch.int64),
        num_classes=10,
    )


def _gunzip_missing(raw: Path) -> None:
    """Unpack ``<file>.gz`` where only the compressed copy is there.

    The files are usually distributed gzipped, but torchvision reads only the unpacked
    ones unless it downloaded them itself.
    """
    for name in _FILES:
        target, packed = raw / name, raw / f"{name}.gz"
        if not target.exists() and packed.exists():
            tmp = target.with_name(f".{name}.tmp{os.getpid()}")
            with gzip.open(packed, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(tmp, target)


def _normalize(images: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    return ((images.to(torch.float32) / 255.0 - mean) / std).unsqueeze(1)
