"""The whole Trainer over the in-process backend: outputs, metrics, determinism."""

import csv
import json
import math

import pytest
import torch

from compoptim.comm import run_local
from compoptim.errors import UserError
from compoptim.topology import disconnected, ring, star
from compoptim.train import Trainer
from tests.conftest import compose_config

METRIC_COLUMNS = [
    "epoch", "step", "samples", "wall_time_s", "sim_time_s", "train_time_s", "compute_time_s", "compress_time_s",
    "comm_time_s",
    "wait_time_s", "bubble_time_s", "wait_time_s_max", "train_loss", "test_loss", "test_acc", "local_test_acc_mean",
    "local_test_acc_min", "local_test_acc_max", "consensus_distance", "train_objective", "grad_norm_sq",
    "local_train_loss", "tracker_error",
    "bytes_sent_per_node",
    "bytes_received_per_node", "bytes_sent_max_node", "messages_sent_per_node", "staleness_mean", "staleness_max",
    "activation_bytes_sent_per_node",
    "compression_error",
]


def train(tmp_path, n, *overrides, topology=None):
    cfg = compose_config("trainer.epochs=2", "model=mlp", "model.hidden=[32]", *overrides)
    return run_local(topology or ring(n),
                     lambda comm: Trainer(cfg, comm, tmp_path, torch.device("cpu"), log=lambda m: None).fit())


def test_run_writes_metrics_summary_and_config(tmp_path):
    summaries = train(tmp_path, 3)
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == METRIC_COLUMNS
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    steps_per_epoch = math.ceil(math.ceil(1438 / 3) / 32)
    assert int(rows[-1]["step"]) == 2 * steps_per_epoch
    # ring(3): two neighbours, fp32 MLP (784*32+32 + 32*10+10 params)
    numel = 784 * 32 + 32 + 32 * 10 + 10
    assert float(rows[-1]["bytes_sent_per_node"]) == 2 * steps_per_epoch * 2 * numel * 4
    assert rows[-1]["bytes_received_per_node"] == rows[-1]["bytes_sent_max_node"] == rows[-1]["bytes_sent_per_node"]
    assert float(rows[-1]["compression_error"]) == 0.0  # the identity is exact (not sampled)
    # the time split adds up to the training time
    last = {k: float(v) for k, v in rows[-1].items()}
    parts = [last[k] for k in ("compute_time_s", "compress_time_s", "comm_time_s", "wait_time_s")]
    assert all(p >= 0 for p in parts) and sum(parts) == pytest.approx(last["train_time_s"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    for key in ("test_acc", "test_loss", "consensus_distance", "bytes_sent_per_node", "wall_time_s", "status"):
        assert key in summary
    assert summary["status"] == "finished"
    assert summary["test_acc"] == pytest.approx(float(rows[-1]["test_acc"]))
    assert summary["topology"]["spectral_gap"] == summary["spectral_gap"] == pytest.approx(1.0)  # ring of 3
    assert summary["metric_bytes_sent_per_node"] > 0 and summary["metric_bytes_received_per_node"] > 0
    drawn = json.loads((tmp_path / "topology.json").read_text())
    assert drawn["name"] == "ring" and len(drawn["rounds"][0]["edges"]) == 3
    assert summary["n_nodes"] == 3
    assert (tmp_path / "config.resolved.yaml").read_text().startswith("seed: 0")
    # all nodes return the same global figures
    assert all(s["test_acc"] == summaries[0]["test_acc"] for s in summaries)


def test_irregular_graph_bytes_per_node_mean_and_max(tmp_path):
    train(tmp_path, 5, "trainer.epochs=1", topology=star(5))
    with open(tmp_path / "metrics.csv") as f:
        last = list(csv.DictReader(f))[-1]
    mean, most = float(last["bytes_sent_per_node"]), float(last["bytes_sent_max_node"])
    assert most == pytest.approx(mean * 5 * 4 / 8)  # hub sends 4 payloads, leaves 1: mean 8/5 payloads


def test_compressed_gossip_counts_the_payload_bytes_and_the_error(tmp_path):
    summaries = train(tmp_path, 3, "trainer.epochs=1", "optimizer=sgd", "compressor=topk", "compressor.ratio=0.1")
    numel = 784 * 32 + 32 + 32 * 10 + 10
    k = math.ceil(0.1 * numel)
    payload = k * (4 + 2)  # fp32 values + uint16 indices (numel < 65536)
    assert summaries[0]["bytes_sent_per_node"] == summaries[0]["steps"] * 2 * payload
    assert 0.5 < summaries[0]["compression_error"] < 1.0  # top-10% keeps part of the norm


def test_no_communication_with_topology_none(tmp_path):
    summaries = train(tmp_path, 3, "trainer.epochs=1", topology=disconnected(3))
    assert summaries[0]["bytes_sent_per_node"] == 0 == summaries[0]["bytes_received_per_node"]
    assert summaries[0]["consensus_distance"] > 0


def test_training_learns_and_consensus_is_the_global_distance(tmp_path):
    summaries = train(tmp_path, 4, "trainer.epochs=3")
    assert summaries[0]["test_acc"] > 0.8
    assert 0 < summaries[0]["consensus_distance"] < 1.0


@pytest.mark.slow
def test_same_seed_same_metrics_different_seed_different(tmp_path):
    def metrics(sub, seed):
        d = tmp_path / sub
        train(d, 3, f"seed={seed}")
        return [{k: v for k, v in r.items() if "time" not in k} for r in csv.DictReader(open(d / "metrics.csv"))]

    assert metrics("a", 1) == metrics("b", 1)
    assert metrics("a", 1) != metrics("c", 2)


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.batch_size=0", "trainer.batch_size must be >= 1; got 0"),
        ("seed=-1", "seed must be >= 0; got -1"),
        ("dataset.split_seed=-2", "dataset.split_seed must be >= 0; got -2"),
        ("optimizer.momentum=1.5", "optimizer.momentum must be >= 0 and < 1; got 1.5"),
    ],
)
def test_bad_values_fail_at_build_with_the_key(tmp_path, override, message):
    with pytest.raises(UserError, match=message.replace(".", r"\.")):
        train(tmp_path, 2, override)


@pytest.mark.slow
def test_topk_and_sign_send_5x_and_25x_fewer_bytes_than_none(tmp_path):
    sent = {c: train(tmp_path / c, 4, "trainer.epochs=1", "optimizer=sgd", f"compressor={c}")[0]["bytes_sent_per_node"]
            for c in ("none", "topk", "sign")}
    assert sent["none"] / sent["topk"] >= 5 and sent["none"] / sent["sign"] >= 25


def test_overlap_polls_the_exchange_during_the_backward_pass(tmp_path):
    """With optimizer.overlap, every parameter's finished gradient lets the exchange in flight
    progress (MPI moves large messages only inside MPI calls); without it, nothing is polled."""
    cfg = compose_config("model=lenet5", "optimizer=dsgd", "trainer.epochs=1")

    def polls(overlap):
        cfg.optimizer.overlap = overlap

        def node(comm):
            calls = []
            comm.progress = lambda: calls.append(1)
            trainer = Trainer(cfg, comm, tmp_path / str(overlap), torch.device("cpu"), log=lambda _m: None)
            xb, yb = next(iter(trainer.loader.epoch()))
            trainer.train_step(xb, yb)
            return len(calls), sum(1 for _ in trainer.model.parameters())

        return run_local(ring(2), node)

    assert all(calls == tensors for calls, tensors in polls(True))
    assert all(calls == 0 for calls, _ in polls(False))


def test_overlap_with_a_frozen_parameter(tmp_path, monkeypatch):
    """A tensor with requires_grad=False stays out of the flat buffers and takes no hook."""
    import compoptim.train.node as trainer_module

    build = trainer_module.build_model

    def with_frozen_bias(*args):
        model = build(*args)
        list(model.parameters())[-1].requires_grad_(False)
        return model

    monkeypatch.setattr(trainer_module, "build_model", with_frozen_bias)
    cfg = compose_config("model=mlp", "model.hidden=[8]", "optimizer=dsgd", "trainer.epochs=1")

    def node(comm):
        trainer = Trainer(cfg, comm, tmp_path, torch.device("cpu"), log=lambda _m: None)
        assert trainer.optimizer.overlap
        return trainer.fit()["status"]

    assert run_local(ring(2), node) == ["finished", "finished"]


@pytest.mark.parametrize("initial", ["full", "minibatch"])
def test_beer_starts_its_tracker_from_the_full_local_gradient(tmp_path, initial):
    """initial_gradient=full (BEER's default, as its authors start): the first step's gradient
    is the mean over the node's whole shard, computed directly here with autograd; later steps
    and initial_gradient=minibatch use the minibatch's."""
    cfg = compose_config("model=mlp", "model.hidden=[8]", "optimizer=beer", f"optimizer.initial_gradient={initial}",
                         "trainer.epochs=1", "trainer.batch_size=16")

    def node(comm):
        trainer = Trainer(cfg, comm, tmp_path / initial, torch.device("cpu"), log=lambda _m: None)
        model, loader, seen = trainer.model, trainer.loader, []
        trainer.optimizer.step = lambda closure=None, opt=trainer.optimizer, step=trainer.optimizer.step: (
            seen.append(trainer.flat.grads.clone()), step(closure))
        batches = iter(loader.epoch())
        expected = []
        for _ in range(2):
            xb, yb = next(batches)
            params = list(model.parameters())
            x, y = (loader.x, loader.y) if initial == "full" and not expected else (xb, yb)
            grads = torch.autograd.grad(torch.nn.functional.cross_entropy(model(x), y), params)
            expected.append(torch.cat([g.reshape(-1) for g in grads]))
            trainer.train_step(xb, yb)
        return [torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(seen, expected)], len(loader.y)

    for matches, shard in run_local(ring(2), node):
        assert matches == [True, True] and shard > 16


def test_initial_gradient_is_checked(tmp_path):
    with pytest.raises(UserError, match=r"optimizer.initial_gradient must be one of full, minibatch .*got half"):
        train(tmp_path, 2, "optimizer=beer", "optimizer.initial_gradient=half")
