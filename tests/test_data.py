import gzip
import struct

import numpy as np
import pytest
import torch

from compoptim.data import ShardLoader, iid_partition, load_dataset
from compoptim.errors import UserError


@pytest.mark.parametrize("n", range(1, 13))
def test_iid_partition_covers_every_sample_once(n):
    shards = iid_partition(1437, n, seed=3)
    assert len(shards) == n
    joined = np.concatenate(shards)
    assert sorted(joined.tolist()) == list(range(1437))
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1


def test_iid_partition_depends_on_seed_only():
    assert all(np.array_equal(a, b) for a, b in zip(iid_partition(100, 3, 0), iid_partition(100, 3, 0)))
    assert not np.array_equal(iid_partition(100, 3, 0)[0], iid_partition(100, 3, 1)[0])


@pytest.mark.parametrize("n, batch", [(3, 32), (5, 7), (7, 1), (4, 1000)])
def test_every_node_takes_the_same_steps_and_sees_its_shard_once(n, batch):
    num = 101
    x = torch.arange(num, dtype=torch.float32).unsqueeze(1)
    y = torch.arange(num)
    shards = iid_partition(num, n, seed=0)
    largest = max(len(s) for s in shards)
    loaders = [ShardLoader(x, y, s, batch, largest, seed=r, device=torch.device("cpu")) for r, s in enumerate(shards)]
    assert len({len(ld) for ld in loaders}) == 1
    for ld, shard in zip(loaders, shards):
        for _ in range(2):  # two epochs, reshuffled
            batches = list(ld.epoch())
            assert len(batches) == len(ld)
            sizes = [len(yb) for _, yb in batches]
            full = len(shard) // batch
            assert sizes[:full] == [batch] * full  # exactly batch_size, the last one shorter
            assert sum(sizes) == len(shard)
            seen = torch.cat([yb for _, yb in batches]).tolist()
            assert sorted(seen) == sorted(shard.tolist())


def test_digits_is_embedded_and_mnist_shaped():
    data = load_dataset({"name": "digits"})
    assert data.input_shape == (1, 28, 28)
    assert data.num_classes == 10
    assert len(data.y_train) + len(data.y_test) == 1797
    assert len(data.y_test) == pytest.approx(0.2 * 1797, abs=10)
    assert set(data.y_test.tolist()) == set(range(10))
    assert abs(data.x_train.mean().item()) < 1e-4


def _write_idx(path, array: np.ndarray, gz: bool) -> None:
    kind = 0x08  # unsigned byte
    header = struct.pack(">HBB", 0, kind, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("gz", [False, True], ids=["idx", "idx.gz"])
@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_torchvision_loaders_read_real_idx_files(tmp_path, name, folder, gz):
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", 20), ("t10k", 6)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (count, 28, 28)), gz=gz)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, count), gz=gz)
    data = load_dataset({"name": name, "root": str(tmp_path), "download": False})
    assert data.x_train.shape == (20, 1, 28, 28) and data.x_test.shape == (6, 1, 28, 28)
    assert data.y_train.dtype == torch.int64 and data.num_classes == 10


def test_missing_mnist_files_say_where_to_put_them(tmp_path):
    with pytest.raises(UserError) as info:
        load_dataset({"name": "mnist", "root": str(tmp_path), "download": False})
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "dataset.download=true" in message


def test_unknown_dataset_setting_lists_the_allowed_ones():
    with pytest.raises(UserError, match="dataset=digits has no setting 'size'; allowed: test_fraction, split_seed"):
        load_dataset({"name": "digits", "size": 3})
