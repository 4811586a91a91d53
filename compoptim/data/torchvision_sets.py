"""MNIST and Fashion-MNIST through torchvision's own loaders (real IDX files on disk).

Before torchvision reads them, each of the four IDX files (or its ``.gz``) is checked here:
header (magic number, dimension count), size against the header, image and label counts.
A damaged file is one UserError naming the file and what is wrong with it; nothing in the
user's folder is changed then (a ``.gz`` is unpacked to a temporary file that is renamed
only once all four files are good, and removed otherwise).
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import struct
import zlib
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
# IDX magic: two zero bytes, the element type (0x08: unsigned byte), the dimension count.
_UBYTE = 0x08
_DIMS = {"images": 3, "labels": 1}
_SHAPE = {"images": "images x rows x cols", "labels": "labels"}
_CLASSES = 10


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
    if raw.exists() and not raw.is_dir():
        raise UserError(f"dataset={name}: {raw} is a file, not a folder; it should hold the four IDX files")
    if raw.is_dir() and not os.access(raw, os.R_OK | os.X_OK):  # else its files would look missing
        raise UserError(f"dataset={name}: cannot read the folder {raw} (Permission denied)")
    try:
        missing = [] if _has_legacy(raw.parent) else _check_and_unpack(raw)
    except UserError as exc:
        raise UserError(f"dataset={name}: {exc}") from None
    if missing and not download:
        raise UserError(f"dataset={name}: files not found; looked in {raw} for {', '.join(missing)}; "
                        f"put the IDX files (optionally .gz) there or set dataset.download=true")
    try:
        train = cls(root=str(Path(root).expanduser()), train=True, download=download)
        test = cls(root=str(Path(root).expanduser()), train=False, download=download)
    except (RuntimeError, OSError, ValueError, TypeError) as exc:
        if missing:
            raise UserError(f"dataset={name}: download failed (no network?) for {', '.join(missing)} into {raw} "
                            f"({_one_line(exc)}); put the IDX files (optionally .gz) there") from exc
        raise UserError(f"dataset={name}: torchvision could not read the IDX files in {raw} "
                        f"({type(exc).__name__}: {_one_line(exc)})") from exc
    for split, part in (("train", train), ("t10k", test)):
        _check_labels(name, raw / f"{split}-labels-idx1-ubyte", part.targets)
    return Dataset(
        name=name,
        x_train=_normalize(train.data, mean, std),
        y_train=train.targets.to(torch.int64),
        x_test=_normalize(test.data, mean, std),
        y_test=test.targets.to(torch.int64),
        num_classes=_CLASSES,
    )


def _has_legacy(base: Path) -> bool:
    """torchvision reads ``<folder>/processed/{training,test}.pt`` (its old cache) instead of raw/ when both exist."""
    return all((base / "processed" / f).is_file() for f in ("training.pt", "test.pt"))


def _check_and_unpack(raw: Path) -> list[str]:
    """Check the four IDX files in ``raw`` (unpacking ``<file>.gz`` where only the compressed
    copy is there; torchvision reads only unpacked files unless it downloaded them itself);
    the names of the missing ones. A damaged file is a UserError, with raw/ left as it was."""
    missing, unpacked, counts = [], {}, {}
    try:
        for name in _FILES:
            target, packed = raw / name, raw / f"{name}.gz"
            if os.path.lexists(target):
                counts[name] = _check_idx(target, target, name)
            elif os.path.lexists(packed):
                tmp = unpacked[target] = target.with_name(f".{name}.tmp{os.getpid()}")
                _gunzip(packed, tmp)
                counts[name] = _check_idx(tmp, packed, name, unpacked=True)
            else:
                missing.append(name)
        for split in ("train", "t10k"):
            images, labels = f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte"
            if images in counts and labels in counts and counts[images] != counts[labels]:
                raise UserError(f"{raw / images} holds {counts[images]} images but {raw / labels} holds "
                                f"{counts[labels]} labels; they must be the same set (one label per image)")
        for target, tmp in unpacked.items():
            os.replace(tmp, target)
    finally:
        for tmp in unpacked.values():
            if os.path.lexists(tmp):
                os.unlink(tmp)
    return missing


def _gunzip(packed: Path, out: Path) -> None:
    """Unpack ``packed`` into ``out``; a damaged or unreadable ``.gz`` is a UserError naming it,
    and so is a folder ``out`` cannot be written to (read and write errors are told apart)."""
    if packed.is_dir():
        raise UserError(f"{packed} is a directory, not a gzip file")
    if packed.is_symlink() and not packed.exists():
        raise UserError(f"{packed} is a broken symbolic link")
    try:
        empty = packed.stat().st_size == 0
    except OSError as exc:
        raise UserError(f"cannot read {packed} ({exc.strerror or exc})") from None
    if empty:
        raise UserError(f"{packed} is empty (0 bytes); expected a gzip file")
    try:
        with contextlib.ExitStack() as files:
            try:
                src = files.enter_context(gzip.open(packed, "rb"))  # the header is read with the first chunk
            except OSError as exc:
                raise UserError(f"cannot read {packed} ({exc.strerror or exc})") from None
            try:
                dst = files.enter_context(open(out, "wb"))
            except OSError as exc:
                raise UserError(f"cannot unpack {packed} into {out.parent} ({exc.strerror or exc}); "
                                f"unpack it yourself or make the folder writable") from None
            while chunk := _read_gzip(src, packed):
                dst.write(chunk)
    except OSError as exc:  # writing or flushing the unpacked file (a full disk); read errors are UserErrors by now
        raise UserError(f"cannot unpack {packed} into {out.parent} ({exc.strerror or exc}); "
                        f"unpack it yourself or free some space") from None


def _read_gzip(src: gzip.GzipFile, packed: Path) -> bytes:
    """The next chunk of ``src`` unpacked; what is wrong with ``packed`` as a UserError."""
    try:
        return src.read(1 << 20)
    except gzip.BadGzipFile as exc:
        if str(exc).startswith("Not a gzipped file"):
            raise UserError(f"{packed}: not a gzip file (it starts with {_start(packed)}, not 0x1f8b); "
                            f"replace it with the published .gz or the unpacked IDX file") from None
        raise UserError(f"{packed}: damaged gzip file ({exc}); replace it with the published .gz") from None
    except EOFError:
        raise UserError(f"{packed}: truncated gzip file (it ends before the end of the compressed data); "
                        f"replace it with the complete .gz") from None
    except zlib.error as exc:
        raise UserError(f"{packed}: damaged gzip data ({exc}); replace it with the published .gz") from None
    except OSError as exc:
        raise UserError(f"cannot read {packed} ({exc.strerror or exc})") from None


def _start(path: Path) -> str:
    with open(path, "rb") as f:
        return "0x" + f.read(2).hex()


def _check_idx(path: Path, shown: Path, name: str, unpacked: bool = False) -> int:
    """The number of items in the IDX file ``path`` (reported as ``shown``), after checking
    that it is an IDX file of unsigned bytes with the dimension count ``name`` needs and
    exactly the size its header gives."""
    kind = "images" if "images" in name else "labels"
    dims = _DIMS[kind]
    expected = f"0x{_UBYTE << 8 | dims:08x}"
    what = f"{shown} (unpacked)" if unpacked else str(shown)
    if path.is_dir():
        raise UserError(f"{shown} is a directory, not an IDX file")
    if path.is_symlink() and not path.exists():
        raise UserError(f"{shown} is a broken symbolic link")
    try:
        with open(path, "rb") as f:
            head = f.read(4 + 4 * 255)
            size = os.fstat(f.fileno()).st_size
    except OSError as exc:
        raise UserError(f"cannot read {shown} ({exc.strerror or exc})") from None
    if size == 0:
        raise UserError(f"{what} is empty (0 bytes); expected an IDX file of {kind}")
    if size < 4:
        raise UserError(f"{what} is truncated: {size} bytes, shorter than the 4-byte IDX magic number")
    magic = struct.unpack(">I", head[:4])[0]
    if magic >> 16 or head[2] != _UBYTE:
        raise UserError(f"{what}: not an IDX file of unsigned bytes (magic 0x{magic:08x}, expected {expected})")
    if head[3] != dims:
        raise UserError(f"{what}: an IDX file with {head[3]} dimensions (magic 0x{magic:08x}); {kind} need "
                        f"{dims} ({_SHAPE[kind]}, magic {expected})")
    header = 4 + 4 * dims
    if size < header:
        raise UserError(f"{what} is truncated: {size} bytes, shorter than its {header}-byte IDX header")
    shape = struct.unpack(f">{dims}I", head[4:header])
    body = math.prod(shape)
    sizes = " x ".join(map(str, shape))
    if size != header + body:
        how = "truncated" if size < header + body else "too long"
        raise UserError(f"{what} is {how}: its header gives {sizes} {kind} ({header + body} bytes with the "
                        f"header), the file has {size} bytes")
    if shape[0] == 0:
        raise UserError(f"{what} holds no {kind} (its header gives {sizes})")
    if kind == "images" and min(shape[1:]) == 0:
        raise UserError(f"{what}: images of size {shape[1]} x {shape[2]} (its header gives {sizes})")
    return shape[0]


def _check_labels(name: str, path: Path, targets: torch.Tensor) -> None:
    bad = torch.nonzero(targets >= _CLASSES)
    if len(bad):
        at = int(bad[0])
        raise UserError(f"dataset={name}: {path}: label {int(targets[at])} at position {at} is outside "
                        f"0..{_CLASSES - 1}")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _normalize(images: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    return ((images.to(torch.float32) / 255.0 - mean) / std).unsqueeze(1)
