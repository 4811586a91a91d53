"""MNIST-1D (Greydanus, "Scaling down deep learning", 2020): 1-D signals of length 40 made
from ten digit-like templates by padding, translation, correlated and iid noise, scaling and
shear. Generated offline by the ``mnist1d`` package with its published default arguments
(5000 samples, 4000 for training and 1000 for testing, seed 42): the dataset of the paper.

Generated once and kept under ``<root>/mnist1d/`` as a plain ``.npz`` (no pickle); the file
records the generator's arguments, and a file generated with others, or damaged, is named
in one line instead of being used.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import zipfile
from pathlib import Path

import numpy as np
import torch

from compoptim.data.base import Dataset
from compoptim.errors import UserError

# Published results of the paper (test accuracy, README of github.com/greydanus/mnist1d).
PUBLISHED_TEST_ACC = {"logistic regression": 0.32, "MLP": 0.68, "CNN": 0.94, "GRU": 0.91}
_ARRAYS = {"x": (4000, 40), "y": (4000,), "x_test": (1000, 40), "y_test": (1000,)}
_CACHE = "mnist1d_default.npz"


def load_mnist1d(root: str = "data") -> Dataset:
    """MNIST-1D with the package's default arguments; x has shape (samples, 1, 40) (one channel)."""
    path = Path(root).expanduser() / "mnist1d" / _CACHE
    arrays = _read(path) if path.exists() else _generate_into(path)
    return Dataset(
        name="mnist1d",
        x_train=torch.from_numpy(arrays["x"]).to(torch.float32).unsqueeze(1),
        y_train=torch.from_numpy(arrays["y"]).to(torch.int64),
        x_test=torch.from_numpy(arrays["x_test"]).to(torch.float32).unsqueeze(1),
        y_test=torch.from_numpy(arrays["y_test"]).to(torch.int64),
        num_classes=10,
    )


def generate() -> dict[str, np.ndarray]:
    """The package's default dataset (``make_dataset(get_dataset_args())``) as arrays.

    The generator seeds numpy's and Python's global generators; their states are put back
    after, so loading this dataset changes no other random stream of the run."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:
        raise UserError(f"dataset=mnist1d needs the mnist1d package (pip install mnist1d): {exc}") from exc
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    return {key: np.asarray(data[key]) for key in _ARRAYS}


def _arguments() -> str:
    from mnist1d.data import get_dataset_args

    return json.dumps(get_dataset_args(as_dict=True), sort_keys=True)


def _generate_into(path: Path) -> dict[str, np.ndarray]:
    arrays = generate()
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with contextlib.suppress(OSError):  # the cache is a convenience: an unwritable root still trains
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                np.savez(f, arguments=np.array(_arguments()), **arrays)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return arrays


def _read(path: Path) -> dict[str, np.ndarray]:
    shown = path.resolve()
    try:
        with np.load(path, allow_pickle=False) as npz:
            stored = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"{shown}: not a readable MNIST-1D cache ({exc}); delete it and it is generated again") \
            from None
    if "arguments" not in stored or str(stored["arguments"]) != _arguments():
        raise UserError(f"{shown}: generated with other mnist1d arguments than the package's defaults; delete it "
                        f"and it is generated again")
    for key, shape in _ARRAYS.items():
        if key not in stored or stored[key].shape != shape:
            found = stored[key].shape if key in stored else "missing"
            raise UserError(f"{shown}: array {key} is {found}, expected shape {shape}; delete it and it is "
                            f"generated again")
    return stored
