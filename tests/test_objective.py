"""The evaluation's global figures against direct float64 computations: x_bar, the consensus
distance, f(x_bar) = (1/n) sum_i f_i(x_bar) and ||grad f(x_bar)||^2 (autograd on the full
objective), on small problems with different models and shards on each node."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from compoptim.comm.local import run_local
from compoptim.optim.flat import FlatParameters
from compoptim.topology import ring
from compoptim.train.evaluate import Evaluator

N, DIM, CLASSES = 3, 5, 4


def node_problem(rank: int, samples: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """Node ``rank``'s own model (other weights on every node) and training shard."""
    g = torch.Generator().manual_seed(100 + rank)
    model = nn.Sequential(nn.Linear(DIM, 6), nn.Tanh(), nn.Linear(6, CLASSES))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return model, torch.randn(samples, DIM, generator=g), torch.randint(0, CLASSES, (samples,), generator=g)


def tracker_of(rank: int, numel: int) -> torch.Tensor:
    """A stand-in gradient tracker y_i per node (float32, as an optimizer holds it)."""
    return torch.randn(numel, generator=torch.Generator().manual_seed(500 + rank))


def evaluate_all(shard_sizes: list[int], equal_models: bool = False, trackers: bool = False) -> list:
    x_test, y_test = torch.randn(20, DIM), torch.randint(0, CLASSES, (20,))

    def node(comm):
        model, x, y = node_problem(0 if equal_models else comm.rank, shard_sizes[comm.rank])
        flat = FlatParameters(model)
        averaged = nn.Sequential(nn.Linear(DIM, 6), nn.Tanh(), nn.Linear(6, CLASSES))
        tracker = (lambda: tracker_of(comm.rank, flat.numel)) if trackers else None
        return Evaluator(model, flat, averaged, x_test, y_test, comm, x_train=x, y_train=y,
                         tracker=tracker).evaluate()

    return run_local(ring(N), node)


def reference(shard_sizes: list[int]) -> tuple[float, float, float]:
    """(consensus distance, f(x_bar), ||grad f(x_bar)||^2) computed directly in float64."""
    problems = [node_problem(r, shard_sizes[r]) for r in range(N)]
    vectors = [torch.cat([p.detach().reshape(-1) for p in m.parameters()]).double() for m, _, _ in problems]
    x_bar = torch.stack(vectors).mean(0)
    consensus = torch.stack([((v - x_bar) ** 2).sum() for v in vectors]).mean().item()
    model = nn.Sequential(nn.Linear(DIM, 6), nn.Tanh(), nn.Linear(6, CLASSES)).double()
    torch.nn.utils.vector_to_parameters(x_bar.clone(), model.parameters())
    held = [(x, y) for _, x, y in problems if len(y)]
    f = sum(nn.functional.cross_entropy(model(x.double()), y) for x, y in held) / len(held)
    grads = torch.autograd.grad(f, list(model.parameters()))
    return consensus, f.item(), sum((g**2).sum() for g in grads).item()


@pytest.mark.parametrize("shards", [[40, 40, 40], [7, 30, 1500], [0, 25, 60]], ids=["equal", "unequal", "empty"])
def test_objective_and_gradient_norm_at_the_average_match_a_direct_computation(shards):
    consensus, f, grad_sq = reference(shards)
    for ev in evaluate_all(shards):  # every node reports the same global figures
        assert ev.consensus_distance == pytest.approx(consensus, rel=1e-12)
        # the model computes in float32; the reference in float64
        assert ev.train_objective == pytest.approx(f, rel=1e-5)
        assert ev.grad_norm_sq == pytest.approx(grad_sq, rel=1e-4)


@pytest.mark.parametrize("shards", [[40, 40, 40], [0, 25, 60]], ids=["equal", "empty"])
def test_local_models_loss_and_tracker_error_match_a_direct_computation(shards):
    """local_train_loss = mean over the nodes with data of f_i(x_i) (own model, own shard);
    tracker_error = (1/n) sum_i ||y_i - grad f(x_bar)||^2, grad f(x_bar) by autograd in float64."""
    problems = [node_problem(r, shards[r]) for r in range(N)]
    own = [nn.functional.cross_entropy(m(x), y).item() for m, x, y in problems if len(y)]
    vectors = [torch.cat([p.detach().reshape(-1) for p in m.parameters()]).double() for m, _, _ in problems]
    model = nn.Sequential(nn.Linear(DIM, 6), nn.Tanh(), nn.Linear(6, CLASSES)).double()
    torch.nn.utils.vector_to_parameters(torch.stack(vectors).mean(0), model.parameters())
    held = [(x, y) for _, x, y in problems if len(y)]
    f = sum(nn.functional.cross_entropy(model(x.double()), y) for x, y in held) / len(held)
    grad_f = torch.cat([g.reshape(-1) for g in torch.autograd.grad(f, list(model.parameters()))])
    error = sum(((tracker_of(r, len(grad_f)).double() - grad_f) ** 2).sum().item() for r in range(N)) / N
    for ev in evaluate_all(shards, trackers=True):
        assert ev.local_train_loss == pytest.approx(sum(own) / len(own), rel=1e-6)
        assert ev.tracker_error == pytest.approx(error, rel=1e-6)
    assert all(math.isnan(ev.tracker_error) for ev in evaluate_all(shards))  # no tracker: NaN


def test_consensus_is_exactly_zero_for_equal_models():
    evaluations = evaluate_all([10, 10, 10], equal_models=True)
    assert [ev.consensus_distance for ev in evaluations] == [0.0] * N
    assert [ev.node_distance for ev in evaluations] == [0.0] * N


@pytest.mark.parametrize("samples, expected", [(None, None), (10, 20), (0, 0)])
def test_objective_samples_is_the_fixed_part_of_each_shard_and_is_recorded(tmp_path, samples, expected):
    """null: every node's whole shard; K: its first K samples; 0: not measured (NaN)."""
    from compoptim.train import Trainer
    from tests.conftest import compose_config

    cfg = compose_config("trainer.epochs=1", "model=logreg",
                         f"trainer.objective_samples={'null' if samples is None else samples}")

    def node(comm):
        return Trainer(cfg, comm, tmp_path, torch.device("cpu"), log=lambda m: None).fit()

    summary = run_local(ring(2), node)[0]
    assert summary["objective_samples"] == (1438 if expected is None else expected)  # digits: 1438 training samples
    assert math.isnan(summary["train_objective"]) == (samples == 0)
    assert math.isnan(summary["grad_norm_sq"]) == (samples == 0)


@pytest.mark.parametrize("optimizer, tracks", [("gt_dsgd", True), ("beer", True), ("docom", True), ("dsgd", False),
                                               ("choco_sgd", False)])
def test_tracking_methods_report_their_tracker_error(tmp_path, optimizer, tracks):
    from compoptim.train import Trainer
    from tests.conftest import compose_config

    extra = ["compressor=topk"] if optimizer in ("beer", "docom", "choco_sgd") else []
    cfg = compose_config("trainer.epochs=1", "model=logreg", f"optimizer={optimizer}", *extra)

    def node(comm):
        return Trainer(cfg, comm, tmp_path, torch.device("cpu"), log=lambda m: None).fit()

    summary = run_local(ring(3), node)[0]
    assert math.isfinite(summary["tracker_error"]) == tracks and summary["tracker_error"] != 0
    assert math.isfinite(summary["local_train_loss"]) and summary["local_train_loss"] > 0
