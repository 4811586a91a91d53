"""backend=local at many nodes: the worker pool changes no bit, tiny shards train, and a node
count that cannot fit is refused before the nodes are built."""

import csv

import pytest
import torch

import compoptim
from compoptim.cli import local_run
from compoptim.comm import local_network, run_nodes
from compoptim.errors import UserError
from compoptim.registry import to_plain
from compoptim.topology import one_peer_exponential
from compoptim.train import Trainer
from compoptim.train.node import SharedParts
from tests.conftest import compose_config


def _train(tmp_path, workers, shared):
    cfg = compose_config("trainer.epochs=2", "model=mlp", "model.hidden=[16]", "optimizer=choco_sgd",
                         "compressor=topk", "compressor.ratio=0.05", "network=ethernet_1g",
                         "network.step_compute_s=0.001")
    comms = local_network(one_peer_exponential(6), workers=workers)
    parts = SharedParts() if shared else None
    trainers = [Trainer(cfg, c, tmp_path, torch.device("cpu"), log=lambda m: None, shared=parts) for c in comms]
    run_nodes(comms, [t.fit for t in trainers])
    with open(tmp_path / "metrics.csv") as f:
        rows = [{k: v for k, v in r.items() if "time" not in k or k == "sim_time_s"} for r in csv.DictReader(f)]
    return torch.stack([t.flat.params.clone() for t in trainers]), rows


def test_the_worker_count_and_shared_parts_change_no_bit(tmp_path):
    """One worker for all nodes, two, or one thread per node (the layout of the backend before
    the pool), with the dataset and initial model built once or per node: the same bits."""
    reference, rows = _train(tmp_path / "ref", workers=6, shared=False)
    assert len(rows) == 3 and float(rows[-1]["sim_time_s"]) > 0
    for workers in (1, 2, 4):
        params, again = _train(tmp_path / f"w{workers}", workers=workers, shared=True)
        assert torch.equal(params, reference) and again == rows


@pytest.mark.slow
def test_shards_of_a_few_samples_train_and_more_nodes_than_samples_are_refused(tmp_path):
    result = compoptim.run(["backend=local", "backend.nodes=480", "model=mlp", "model.hidden=[8]", "trainer.epochs=1",
                            "trainer.objective_samples=0"], run_dir=tmp_path / "many")
    assert result.summary["status"] == "finished" and result.summary["n_nodes"] == 480
    assert len(result.nodes[result.nodes["epoch"] == 1]) == 480
    with pytest.raises(UserError, match="1439 nodes but dataset=digits has only 1438 training samples"):
        compoptim.run(["backend=local", "backend.nodes=1439", "model=mlp"], run_dir=tmp_path / "too_many")


def test_nodes_that_cannot_fit_are_refused_with_the_largest_count_that_fits(tmp_path, monkeypatch):
    cfg = to_plain(compose_config("backend=local", "backend.nodes=64", "model=mlp", "model.hidden=[2000]"))
    built = []
    real_trainer = local_run.Trainer

    def counting(*args, **kwargs):
        built.append(1)
        return real_trainer(*args, **kwargs)

    monkeypatch.setattr(local_run, "Trainer", counting)
    monkeypatch.setattr(local_run, "available_memory", lambda: 40 * 2**20)
    # 1.6M parameters: ~6.4 MB per model copy, a dozen copies per node
    with pytest.raises(UserError, match=r"backend.nodes=64 needs about .* [GM]iB more for its nodes \(.* MiB each: "
                                        r"model, optimizer state, .*\), but 40.0 MiB are available: at most \d+ nodes"):
        local_run.build_local_job(cfg, tmp_path)
    assert len(built) == local_run.MemoryProbe.SAMPLE  # refused before building the rest
