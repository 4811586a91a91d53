"""Experiment presets: they compose to the origin project's grids and run a few steps on small
files in the real formats (the datasets cannot be downloaded here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from compoptim.comm import local_network, run_nodes
from compoptim.errors import UserError
from compoptim.topology import build_topology
from compoptim.train import Trainer
from tests.conftest import compose_config
from tests.test_data import _write_idx
from tests.test_datasets import no_md5, write_cifar10  # noqa: F401 - the fixture is used by name

GRIDS = {  # preset -> (nodes, model, dataset, top-k ratio, damsco lr, dashco lr, batch iid/label, epochs)
    "damsco_fmnist": (5, "lenet5", "fashion_mnist", 0.3, 1e-3, 0.02, (8, 8), 100),
    "damsco_cifar10": (5, "resnet20", "cifar10", 0.4, 1e-3, 0.02, (64, 32), 300),
    "damsco_shakespeare": (4, "char_gpt", "shakespeare", 0.55, 1e-4, 0.02, (128, 128), 650),
}


@pytest.mark.parametrize("preset", sorted(GRIDS))
def test_damsco_presets_are_the_published_grids(preset):
    nodes, model, dataset, ratio, lr_damsco, lr_dashco, (batch_iid, batch_label), epochs = GRIDS[preset]
    for optimizer, lr in (("damsco", lr_damsco), ("dashco", lr_dashco)):
        for partition, batch in (("iid", batch_iid), ("label", batch_label)):
            cfg = compose_config(f"+experiment={preset}", f"optimizer={optimizer}", f"dataset/partition={partition}")
            c = OmegaConf.to_container(cfg, resolve=True)
            assert (c["nodes"], c["model"]["name"], c["dataset"]["name"], c["topology"]["name"]) == \
                (nodes, model, dataset, "ring")
            assert (c["compressor"]["name"], c["compressor"]["ratio"]) == ("topk", ratio)
            assert c["optimizer"]["lr"] == lr and c["trainer"]["batch_size"] == batch
            assert c["trainer"]["epochs"] == epochs
    if preset == "damsco_shakespeare":
        c = compose_config(f"+experiment={preset}")
        assert (c.model.layers, c.model.heads, c.model.width, c.dataset.context) == (6, 6, 384, 256)


@pytest.mark.slow
def test_lodadac_preset_scales_epochs_with_the_local_steps():
    for k in (1, 2, 5, 10, 20, 50):
        cfg = compose_config("+experiment=lodadac_cifar10", f"optimizer.period={k}", "optimizer=amsgrad")
        assert cfg.trainer.epochs == 250 * k and cfg.nodes == 4 and cfg.optimizer.lr == 1e-3


def _small_files(tmp_path, dataset):
    if dataset == "fashion_mnist":
        raw = tmp_path / "FashionMNIST" / "raw"
        raw.mkdir(parents=True)
        for prefix, count in (("train", 40), ("t10k", 10)):
            _write_idx(raw / f"{prefix}-images-idx3-ubyte", np.random.default_rng(0).integers(0, 256, (count, 28, 28)),
                       gz=True)
            _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(count) % 10, gz=True)
        return [f"dataset.root={tmp_path}"]
    if dataset == "cifar10":
        write_cifar10(tmp_path, train_per_batch=8, test=10)
        return [f"dataset.root={tmp_path}"]
    (tmp_path / "input.txt").write_text("ROMEO: but soft, what light through yonder window breaks\n" * 60)
    return [f"dataset.path={tmp_path / 'input.txt'}", "dataset.context=16", "model.layers=1", "model.width=24",
            "model.heads=6"]


@pytest.mark.parametrize("preset, optimizer", [(p, o) for p in [*GRIDS, "lodadac_cifar10"]
                                               for o in (("damsco", "dashco") if p in GRIDS else ("adagrad",))])
@pytest.mark.parametrize("partition", ["iid", "label"])
def test_presets_run_a_few_steps_on_small_files(tmp_path, no_md5, preset, optimizer, partition):  # noqa: F811
    dataset = {"damsco_fmnist": "fashion_mnist", "damsco_shakespeare": "shakespeare"}.get(preset, "cifar10")
    cfg = compose_config(f"+experiment={preset}", f"optimizer={optimizer}", f"dataset/partition={partition}",
                         "trainer.batch_size=2", *_small_files(tmp_path, dataset))
    comms = local_network(build_topology(cfg.topology, cfg.nodes))
    trainers = [Trainer(cfg, c, tmp_path / "run", torch.device("cpu"), log=lambda m: None) for c in comms]

    def steps(trainer):
        batches = trainer.loader.epoch()
        # a node whose (non-iid) shard is used up gets empty batches: no loss, still gossips
        return [loss for loss in (trainer.train_step(*next(batches)) for _ in range(3)) if loss is not None]

    losses = run_nodes(comms, [lambda t=t: steps(t) for t in trainers])
    assert all(node and all(np.isfinite(float(v)) for v in node) for node in losses)


def test_a_preset_refuses_the_wrong_number_of_nodes(tmp_path, no_md5):  # noqa: F811
    cfg = compose_config("+experiment=damsco_cifar10", *_small_files(tmp_path, "cifar10"))
    comms = local_network(build_topology(cfg.topology, 3))
    with pytest.raises(UserError, match=r"meant for nodes=5 \(mpirun -np 5"):
        Trainer(cfg, comms[0], tmp_path, torch.device("cpu"), log=lambda m: None)
