"""CIFAR-10 through torchvision's own loader (the real python-pickle batches on disk)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch

from compoptim.data.base import Dataset
from compoptim.errors import UserError

_MEAN = (0.4914, 0.4822, 0.4465)
_STD = (0.2470, 0.2435, 0.2616)
_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
          "batches.meta")
_CLASSES = 10
_PIXELS = 3 * 32 * 32


def load_cifar10(root: str = "data", download: bool = False, augment: bool = True) -> Dataset:
    """The python-version batches in ``<root>/cifar-10-batches-py`` (``download=true`` fetches
    them), normalized per channel. ``augment``: the training batches get ``random_crop_flip``
    (random crop with 4-pixel padding + horizontal flip, batched on the training device).
    A missing or damaged batch file is one UserError naming it and what is wrong."""
    import torchvision.datasets as tvd

    folder = Path(root).expanduser().resolve() / "cifar-10-batches-py"
    if folder.exists() and not folder.is_dir():
        raise UserError(f"dataset=cifar10: {folder} is a file, not a folder; it should hold the python-version "
                        f"batches ({', '.join(_FILES)})")
    if folder.is_dir() and not os.access(folder, os.R_OK | os.X_OK):  # else its files would look missing
        raise UserError(f"dataset=cifar10: cannot read the folder {folder} (Permission denied)")
    missing = [f for f in _FILES if not os.path.lexists(folder / f)]
    if missing and not download:
        raise UserError(f"dataset=cifar10: files not found; looked in {folder} for {', '.join(missing)}; "
                        f"put the python-version batches there or set dataset.download=true")
    try:
        train = tvd.CIFAR10(root=str(Path(root).expanduser()), train=True, download=download)
        test = tvd.CIFAR10(root=str(Path(root).expanduser()), train=False, download=download)
    except Exception as exc:  # torchvision's reading raises whatever the damaged bytes cause
        if missing:
            raise UserError(f"dataset=cifar10: download failed (no network?) into {folder} for "
                            f"{', '.join(missing)} ({type(exc).__name__}: {_one_line(exc)}); put the python-version "
                            f"batches there") from exc
        raise _damaged(folder, download, exc) from exc
    for part in (train, test):
        if part.data.dtype != np.uint8 or len(part.targets) != len(part.data) or not all(
                isinstance(v, (int, np.integer)) and 0 <= v < _CLASSES for v in part.targets):
            raise _damaged(folder, download, None)
    return Dataset("cifar10", _normalize(train.data), torch.tensor(train.targets, dtype=torch.int64),
                   _normalize(test.data), torch.tensor(test.targets, dtype=torch.int64), num_classes=_CLASSES,
                   augment=random_crop_flip if augment else None)


def _damaged(folder: Path, download: bool, exc: BaseException | None) -> UserError:
    """The UserError for batches torchvision refused (``exc``) or read into something unusable:
    the first file found damaged, and how."""
    problem = _first_problem(folder)
    if problem is None:
        why = (f" ({type(exc).__name__}: {_one_line(exc)})" if exc is not None
               else " (the images and labels do not match)")
        return UserError(f"dataset=cifar10: torchvision could not read the batches in {folder}{why}")
    if download and exc is not None:
        return UserError(f"dataset=cifar10: {problem}; dataset.download=true could not fetch a fresh copy "
                         f"({type(exc).__name__}: {_one_line(exc)})")
    return UserError(f"dataset=cifar10: {problem}; replace it with the published file "
                     f"(or delete the folder and set dataset.download=true)")


def _first_problem(folder: Path) -> str | None:
    """What is wrong with the first damaged file among the seven in ``folder``, or None.

    The published md5 checksum is checked first (torchvision's own list and check), so a
    file is unpickled only once it is known to be the published one, as torchvision does."""
    import torchvision.datasets.cifar as cifar
    from torchvision.datasets.utils import calculate_md5

    tv = cifar.CIFAR10
    for name, md5 in (*tv.train_list, *tv.test_list, (tv.meta["filename"], tv.meta["md5"])):
        path = folder / name
        if path.is_dir():
            return f"{path} is a directory, not a batch file"
        if not path.exists():
            return f"{path} is a broken symbolic link" if path.is_symlink() else f"{path} is missing"
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size == 0:
                    return f"{path} is empty (0 bytes)"
                if not cifar.check_integrity(str(path), md5):
                    return (f"{path} is damaged: its md5 checksum is {calculate_md5(str(path))}, the published "
                            f"file's is {md5}")
                f.seek(0)
                try:
                    entry = pickle.load(f, encoding="latin1")
                except Exception as exc:  # noqa: BLE001 -- damaged bytes can fail to unpickle in any way
                    if isinstance(exc, EOFError) or "truncated" in str(exc):
                        return f"{path} is truncated (its pickle ends early; {size} bytes)"
                    return f"{path} is not a pickled CIFAR-10 batch ({type(exc).__name__}: {_one_line(exc)})"
        except OSError as exc:
            return f"cannot read {path} ({exc.strerror or exc})"
        problem = _entry_problem(entry, name == tv.meta["filename"])
        if problem:
            return f"{path}: {problem}"
    return None


def _entry_problem(entry: object, meta: bool) -> str | None:
    """What is wrong with one unpickled batch (or, ``meta``, with batches.meta), or None."""
    if not isinstance(entry, dict):
        return f"holds a pickled {type(entry).__name__}, not a CIFAR-10 batch dict"
    if meta:
        names = entry.get("label_names")
        if not isinstance(names, (list, tuple)) or len(names) != _CLASSES:
            return f"'label_names' must list the {_CLASSES} class names; got {_short(names)}"
        return None
    labels = entry.get("labels", entry.get("fine_labels"))
    if "data" not in entry or labels is None:
        return f"a batch needs 'data' and 'labels' entries; it has {', '.join(map(repr, entry)) or 'none'}"
    data = entry["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _PIXELS:
        shape = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        return f"'data' must be a uint8 array of shape (N, {_PIXELS}) (rows of 3x32x32 pixels); got a {shape}"
    if not isinstance(labels, (list, tuple, np.ndarray)) or len(labels) != len(data):
        count = len(labels) if hasattr(labels, "__len__") else _short(labels)
        return f"'labels' must give one label per image; {len(data)} images, {count} labels"
    bad = [v for v in labels if not isinstance(v, (int, np.integer)) or not 0 <= v < _CLASSES]
    if bad:
        return f"label {_short(bad[0])} is not a class number 0..{_CLASSES - 1}"
    return None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


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
