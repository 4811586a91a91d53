"""Every dataset loader on small files in the real on-disk formats, every partition for
n = 1..12, and every dataset x model pairing composing and taking one training step."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from compoptim.comm import run_local
from compoptim.data import DATASETS, PARTITIONS, build_partition, load_dataset
from compoptim.data.cifar10 import random_crop_flip
from compoptim.data.partition import label_histogram
from compoptim.errors import UserError
from compoptim.topology import ring
from compoptim.train import Trainer
from tests.conftest import compose_config
from tests.test_data import _write_idx


def write_cifar10(root, train_per_batch=6, test=8):
    """The python-version CIFAR-10 batches: pickled dicts of uint8 rows (3072 = 3x32x32) and labels
    (the published files are Python 2 pickles whose keys load as str)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, count in [*((f"data_batch_{i}", train_per_batch) for i in range(1, 6)), ("test_batch", test)]:
        batch = {"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
                 "labels": rng.integers(0, 10, count).tolist(), "batch_label": name}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f, protocol=2)


@pytest.fixture
def no_md5(monkeypatch):
    """The written batches are not the published files, so torchvision's md5 check is
    replaced by a presence check; the rest of torchvision's reading code runs as is."""
    import os

    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))


def test_cifar10_reads_the_python_batches(tmp_path, no_md5):
    write_cifar10(tmp_path)
    data = load_dataset({"name": "cifar10", "root": str(tmp_path), "download": False})
    assert data.x_train.shape == (30, 3, 32, 32) and data.x_test.shape == (8, 3, 32, 32)
    assert data.y_train.dtype == torch.int64 and data.num_classes == 10


def test_cifar10_carries_its_augmentation(tmp_path, no_md5):
    write_cifar10(tmp_path)
    assert load_dataset({"name": "cifar10", "root": str(tmp_path)}).augment is random_crop_flip
    assert load_dataset({"name": "cifar10", "root": str(tmp_path), "augment": False}).augment is None


def test_cifar10_missing_files_say_where(tmp_path):
    with pytest.raises(UserError) as info:
        load_dataset({"name": "cifar10", "root": str(tmp_path), "download": False})
    assert str(tmp_path / "cifar-10-batches-py") in str(info.value) and "data_batch_1" in str(info.value)


def test_random_crop_flip_shifts_and_mirrors_within_the_padding():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    out = random_crop_flip(x, torch.Generator().manual_seed(0), padding=2)
    assert out.shape == x.shape
    for i in range(2):  # every output row is a (possibly mirrored) piece of a shifted input row, or padding
        values = set(out[i].flatten().tolist()) - {0.0}
        assert values <= set(x[i].flatten().tolist())


def test_shakespeare_reads_a_text_file(tmp_path):
    path = tmp_path / "input.txt"
    path.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 20)
    data = load_dataset({"name": "shakespeare", "path": str(path), "context": 16})
    assert data.task == "language" and data.x_train.shape[1] == 16
    assert torch.equal(data.x_train[0, 1:], data.y_train[0, :-1])  # targets are the next characters
    assert data.num_classes == len(set(path.read_text()))
    with pytest.raises(UserError, match="cannot read the text file"):
        load_dataset({"name": "shakespeare", "path": str(tmp_path / "missing.txt")})


@pytest.mark.parametrize("problem", ["classification", "least_squares"])
def test_synthetic_heterogeneity_moves_the_local_optima_apart(problem):
    same = load_dataset({"name": "synthetic", "problem": problem, "heterogeneity": 0.0})
    apart = load_dataset({"name": "synthetic", "problem": problem, "heterogeneity": 3.0})
    assert same.strata is not None and len(same.strata) == len(same.y_train)
    if problem == "least_squares":
        def spread(d):  # per-group least-squares solutions differ more with heterogeneity
            sols = [torch.linalg.lstsq(d.x_train[d.strata == g], d.y_train[d.strata == g].unsqueeze(1)).solution
                    for g in range(4)]
            return torch.stack(sols).std(dim=0).mean().item()
        assert spread(apart) > 10 * spread(same)
    else:
        assert same.num_classes == 5 and same.task == "classification"


LABELS = np.repeat(np.arange(10), 37)
PARTITION_NAMES = ["iid", "label", "dirichlet", "shards"]


@pytest.mark.parametrize("n", range(1, 13))
@pytest.mark.parametrize("name", PARTITION_NAMES)
def test_every_partition_covers_every_sample_once(name, n):
    shards = build_partition({"name": name}, LABELS, n, seed=3)
    assert len(shards) == n and all(len(s) > 0 for s in shards)
    joined = np.concatenate(shards)
    assert len(joined) == len(LABELS) and len(np.unique(joined)) == len(LABELS)
    counts = label_histogram(LABELS, shards, 10)
    assert np.array(counts).sum(axis=0).tolist() == [37] * 10
    if name == "label":
        k = -(-10 // n)
        assert all(sum(c > 0 for c in node) <= k for node in counts)
        if n * k <= 10:  # enough classes: no class shared between nodes
            assert all(sum(node[c] > 0 for node in counts) == 1 for c in range(10))


def test_partition_errors():
    with pytest.raises(UserError, match="covers only 4 of 10 classes"):
        build_partition({"name": "label", "classes_per_node": 1}, LABELS, 4, 0)
    with pytest.raises(UserError, match=r"dataset\.partition\.alpha must be > 0"):
        build_partition({"name": "dirichlet", "alpha": 0}, LABELS, 4, 0)
    with pytest.raises(UserError, match=r"dataset\.partition must be one of iid, label, dirichlet, shards"):
        build_partition({"name": "random"}, LABELS, 4, 0)
    with pytest.raises(UserError, match=r"partition=iid has no setting 'alpha'"):
        build_partition({"name": "iid", "alpha": 0.1}, LABELS, 4, 0)
    with pytest.raises(UserError, match=r"choose it with dataset/partition=label"):
        build_partition("label", LABELS, 4, 0)


def test_partitions_compose_as_their_own_node_under_dataset():
    assert compose_config().dataset.partition == {"name": "iid"}
    assert compose_config("dataset=synthetic").dataset.partition.name == "label"
    assert compose_config("dataset=synthetic", "dataset/partition=iid").dataset.partition == {"name": "iid"}
    cfg = compose_config("dataset/partition=dirichlet", "dataset.partition.alpha=0.1")
    assert cfg.dataset.partition == {"name": "dirichlet", "alpha": 0.1} and cfg.dataset.name == "digits"
    for bad in (["dataset/partition=random"], ["dataset.partition.alpha=0.1"],
                ["dataset/partition=dirichlet", "dataset.partition.classes_per_node=2"]):
        with pytest.raises(Exception, match="partition"):
            compose_config(*bad)


IMAGE_MODELS = ["lenet5", "mlp", "logreg", "resnet20", "resnet18"]
PAIRINGS = ([("digits", m) for m in IMAGE_MODELS] + [("mnist", "lenet5"), ("fashion_mnist", "mlp")]
            + [("cifar10", m) for m in IMAGE_MODELS] + [("shakespeare", "char_gpt")]
            + [("mnist1d", "cnn1d"), ("mnist1d", "mlp")]
            + [("synthetic", "logreg"), ("synthetic", "mlp"), ("synthetic_ls", "logreg")])


def test_every_registered_dataset_and_partition_is_tested():
    """A dataset or partition registered without a place in PAIRINGS or PARTITION_NAMES fails here."""
    assert set(DATASETS) == {d for d, _ in PAIRINGS} - {"synthetic_ls"}
    assert set(PARTITIONS) == set(PARTITION_NAMES)


# the 16-second one (ResNet-18 on upsampled digits) and mnist1d's (it generates the set) are slow; the rest
# stay in the quick subset
@pytest.mark.parametrize("dataset, model", [pytest.param(*p, marks=pytest.mark.slow)
                                            if p in (("digits", "resnet18"), ("digits", "resnet20"))
                                            or p[0] == "mnist1d" else p
                                            for p in PAIRINGS])
def test_every_dataset_model_pairing_composes_and_takes_a_step(tmp_path, no_md5, dataset, model):
    overrides = [f"model={model}", "trainer.batch_size=4", "trainer.epochs=1", "optimizer=sgd"]
    if dataset in ("mnist", "fashion_mnist"):
        raw = tmp_path / ("MNIST" if dataset == "mnist" else "FashionMNIST") / "raw"
        raw.mkdir(parents=True)
        for prefix, count in (("train", 12), ("t10k", 4)):
            _write_idx(raw / f"{prefix}-images-idx3-ubyte", np.zeros((count, 28, 28)), gz=False)
            _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(count) % 10, gz=False)
        overrides += [f"dataset={dataset}", f"dataset.root={tmp_path}"]
    elif dataset == "cifar10":
        write_cifar10(tmp_path, train_per_batch=2, test=4)
        overrides += ["dataset=cifar10", f"dataset.root={tmp_path}"]
    elif dataset == "shakespeare":
        (tmp_path / "t.txt").write_text("to be or not to be " * 40)
        overrides += ["dataset=shakespeare", f"dataset.path={tmp_path / 't.txt'}", "dataset.context=8",
                      "model.layers=1", "model.width=16", "model.heads=2"]
    elif dataset == "mnist1d":
        overrides += ["dataset=mnist1d", f"dataset.root={tmp_path}"]
    elif dataset == "synthetic_ls":
        overrides += ["dataset=synthetic", "dataset.problem=least_squares", "dataset.samples=200"]
    else:
        overrides += [f"dataset={dataset}"] + (["dataset.samples=200"] if dataset == "synthetic" else [])
    cfg = compose_config(*overrides)

    def node(comm):
        trainer = Trainer(cfg, comm, tmp_path / "run", torch.device("cpu"), log=lambda m: None)
        xb, yb = next(iter(trainer.loader.epoch()))
        before = trainer.flat.params.clone()
        loss = trainer.train_step(xb, yb)
        assert torch.isfinite(loss) and not torch.equal(before, trainer.flat.params)
        return trainer.evaluator.evaluate().test_loss

    losses = run_local(ring(2), node)
    assert all(np.isfinite(losses))


@pytest.mark.parametrize("dataset, model", [("digits", "char_gpt"), ("synthetic", "lenet5"), ("synthetic", "resnet20")])
def test_impossible_pairings_are_one_line_errors(tmp_path, dataset, model):
    extra = ["dataset.samples=200"] if dataset == "synthetic" else []
    cfg = compose_config(f"dataset={dataset}", f"model={model}", *extra)
    with pytest.raises(UserError, match="needs"):
        run_local(ring(1), lambda comm: Trainer(cfg, comm, tmp_path, torch.device("cpu"), log=lambda m: None))
