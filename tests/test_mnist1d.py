"""dataset=mnist1d: the package's own default dataset, generated offline, kept as a checked
.npz cache; and model=cnn1d, the paper's CNN."""

from __future__ import annotations

import random
import shutil

import numpy as np
import pytest
import torch

from compoptim.data import load_dataset
from compoptim.data.mnist1d import _CACHE, load_mnist1d
from compoptim.errors import UserError
from compoptim.models.cnn1d import CNN1d

mnist1d_data = pytest.importorskip("mnist1d.data")
pytestmark = pytest.mark.slow  # generating the dataset takes seconds


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return root, load_mnist1d(str(root))


def test_the_arrays_are_the_packages_own_for_its_default_seed(generated):
    _, data = generated
    reference = mnist1d_data.make_dataset(mnist1d_data.get_dataset_args())
    assert torch.equal(data.x_train[:, 0], torch.from_numpy(reference["x"]).float())
    assert torch.equal(data.y_train, torch.from_numpy(reference["y"]).long())
    assert torch.equal(data.x_test[:, 0], torch.from_numpy(reference["x_test"]).float())
    assert torch.equal(data.y_test, torch.from_numpy(reference["y_test"]).long())
    assert data.x_train.shape == (4000, 1, 40) and data.num_classes == 10


def test_the_cache_is_read_back_and_no_temporary_file_is_left(generated):
    root, data = generated
    again = load_dataset({"name": "mnist1d", "root": str(root)})
    assert torch.equal(again.x_train, data.x_train) and torch.equal(again.y_test, data.y_test)
    assert sorted(p.name for p in (root / "mnist1d").iterdir()) == [_CACHE]


def test_generating_leaves_the_global_random_streams_as_they_were(tmp_path):
    np.random.seed(7)
    random.seed(7)
    expected = (np.random.random(), random.random())
    np.random.seed(7)
    random.seed(7)
    load_mnist1d(str(tmp_path))  # the package seeds both with 42 while it generates
    assert (np.random.random(), random.random()) == expected


@pytest.mark.parametrize("damage", ["truncated", "text", "other_arguments", "wrong_shape"])
def test_a_damaged_or_foreign_cache_is_named_in_one_line(generated, tmp_path, damage):
    root, _ = generated
    shutil.copytree(root / "mnist1d", tmp_path / "mnist1d")
    cache = tmp_path / "mnist1d" / _CACHE
    if damage == "truncated":
        cache.write_bytes(cache.read_bytes()[:1000])
    elif damage == "text":
        cache.write_text("not an npz")
    else:
        with np.load(cache) as npz:
            arrays = {k: npz[k] for k in npz.files}
        if damage == "other_arguments":
            arrays["arguments"] = np.array('{"seed": 1}')
        else:
            arrays["x"] = arrays["x"][:10]
        with open(cache, "wb") as f:
            np.savez(f, **arrays)
    before = cache.read_bytes()
    with pytest.raises(UserError) as caught:
        load_mnist1d(str(tmp_path))
    message = str(caught.value)
    assert message.startswith(f"{cache.resolve()}: ") and message.endswith("delete it and it is generated again")
    assert "\n" not in message and cache.read_bytes() == before


def test_cnn1d_is_the_papers_cnn():
    model = CNN1d((1, 40), 10)
    assert sum(p.numel() for p in model.parameters()) == 5210  # 150 + 1900 + 1900 + 1260
    assert model.linear.in_features == 125
    assert model(torch.randn(4, 1, 40)).shape == (4, 10) and CNN1d((40,), 10)(torch.randn(2, 40)).shape == (2, 10)
    with pytest.raises(UserError, match="model=cnn1d takes sequences"):
        CNN1d((3, 32, 32), 10)
