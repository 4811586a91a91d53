"""The optimizer library against its oracles (DESIGN.md): torch.optim for one node and for
exact averaging, CHOCO(identity, gamma=1) = D-PSGD, gradient tracking's invariant, the exact
optimum of a heterogeneous least-squares problem, and exact resume for every algorithm."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compoptim.comm import run_local
from compoptim.compress import CompressContext, build_compressor
from compoptim.data.least_squares import heterogeneous_least_squares
from compoptim.errors import UserError
from compoptim.optim import ALGORITHMS, FlatParameters, build_optimizer
from compoptim.topology import complete, disconnected, ring
from compoptim.train.schedules import LRSchedule
from tests.conftest import compose_config

NONE = {"name": "none"}


def compressors_for(cfg=NONE, dtype=torch.float64):
    return lambda stream: build_compressor(cfg, CompressContext(dtype=dtype, seed=stream))


def opt_cfg(name, *overrides):
    """The composed optimizer config (Hydra composes in the main thread, not in the nodes')."""
    return compose_config(f"optimizer={name}", *overrides).optimizer


def make(cfg, flat, comm, compressor=NONE):
    return build_optimizer(cfg, flat, comm, compressors_for(compressor, flat.params.dtype))


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 3)).double()


DATA = [(torch.randn(8, 10, generator=torch.Generator().manual_seed(i), dtype=torch.float64),
         torch.randint(0, 3, (8,), generator=torch.Generator().manual_seed(100 + i))) for i in range(12)]

TORCH_CASES = [
    ("sgd", ["optimizer.lr=0.1"], lambda p: torch.optim.SGD(p, lr=0.1)),
    ("sgd", ["optimizer.lr=0.1", "optimizer.momentum=0.9", "optimizer.weight_decay=0.01"],
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01)),
    ("sgd", ["optimizer.lr=0.1", "optimizer.momentum=0.9", "optimizer.nesterov=true"],
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    ("sgd", ["optimizer.lr=0.1", "optimizer.momentum=0.8", "optimizer.dampening=0.3"],
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.8, dampening=0.3)),
    ("adam", ["optimizer.lr=0.01", "optimizer.weight_decay=0.01"],
     lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.01)),
    ("adamw", ["optimizer.lr=0.01", "optimizer.weight_decay=0.1"],
     lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)),
    ("amsgrad", ["optimizer.lr=0.01", "optimizer.betas=[0.8,0.99]"],
     lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), amsgrad=True)),
    ("adagrad", ["optimizer.lr=0.05", "optimizer.lr_decay=0.01", "optimizer.weight_decay=0.001"],
     lambda p: torch.optim.Adagrad(p, lr=0.05, lr_decay=0.01, weight_decay=0.001)),
]


def _torch_trajectory(make_torch, grads_for):
    ref = mlp()
    opt = make_torch(ref.parameters())
    for step in range(len(DATA)):
        opt.zero_grad()
        grads_for(ref, step)
        opt.step()
    return [p.detach().clone() for p in ref.parameters()]


def _loss_backward(model, step, node=None):
    x, y = DATA[step]
    if node is not None:  # a different batch per node: rows shifted by the node
        x = torch.roll(x, node, dims=0) + 0.1 * node
    F.cross_entropy(model(x), y).backward()


@pytest.mark.parametrize("name, overrides, make_torch", TORCH_CASES, ids=lambda v: v if isinstance(v, str) else "")
def test_one_node_equals_torch_optim(name, overrides, make_torch):
    expected = _torch_trajectory(make_torch, _loss_backward)
    model = mlp()
    cfg = opt_cfg(name, *overrides)

    def node(comm):
        flat = FlatParameters(model)
        opt = make(cfg, flat, comm)
        for step in range(len(DATA)):
            flat.zero_grad()
            _loss_backward(model, step)
            opt.step()

    run_local(ring(1), node)
    for p, q in zip(expected, model.parameters()):
        torch.testing.assert_close(q.detach(), p, rtol=1e-6, atol=1e-9)


FUSED_CASES = [case for case in TORCH_CASES if case[0] in ("adam", "adamw", "amsgrad", "adagrad")]


@pytest.mark.parametrize("name, overrides, make_torch", FUSED_CASES, ids=lambda v: v if isinstance(v, str) else "")
def test_the_op_by_op_rules_equal_torch_optim_too_and_the_fused_ones_run_torchs_kernel(name, overrides, make_torch):
    """optimizer.fused=false (the sequence of elementwise ops) holds the same oracle, and
    the default takes torch's fused kernel on the CPU; the two agree to rounding only."""
    expected = _torch_trajectory(make_torch, _loss_backward)
    trajectories = {}
    for fused in (True, False):
        model = mlp()
        cfg = opt_cfg(name, *overrides, f"optimizer.fused={str(fused).lower()}")

        def node(comm, model=model, cfg=cfg, fused=fused):
            flat = FlatParameters(model)
            opt = make(cfg, flat, comm)
            assert opt.rule.fused is fused
            for step in range(len(DATA)):
                flat.zero_grad()
                _loss_backward(model, step)
                opt.step()

        run_local(ring(1), node)
        trajectories[fused] = [q.detach().clone() for q in model.parameters()]
        for p, q in zip(expected, trajectories[fused]):
            torch.testing.assert_close(q, p, rtol=1e-6, atol=1e-9)
    assert any(not torch.equal(a, b) for a, b in zip(trajectories[True], trajectories[False])), \
        "the fused kernel gave the op-by-op bits exactly: is it running?"


def _averaged_gradient(n):
    def grads_for(ref, step):
        # sum_i of node i's loss / n: the gradient averaged over the nodes
        for i in range(n):
            x, y = DATA[step]
            (F.cross_entropy(ref(torch.roll(x, i, dims=0) + 0.1 * i), y) / n).backward()
    return grads_for


def _run_nodes(topology, name, overrides):
    models = [mlp() for _ in range(topology.n)]
    cfg = opt_cfg(name, *overrides)

    def node(comm):
        model = models[comm.rank]
        flat = FlatParameters(model)
        opt = make(cfg, flat, comm)
        for step in range(len(DATA)):
            flat.zero_grad()
            _loss_backward(model, step, node=comm.rank)
            opt.step()

    run_local(topology, node)
    return models


@pytest.mark.parametrize("name, overrides, make_torch", TORCH_CASES, ids=lambda v: v if isinstance(v, str) else "")
def test_allreduce_baseline_equals_torch_optim_on_the_averaged_gradient(name, overrides, make_torch):
    n = 3
    expected = _torch_trajectory(make_torch, _averaged_gradient(n))
    for model in _run_nodes(ring(n), name, [*overrides, "optimizer.gossip=allreduce"]):
        for p, q in zip(expected, model.parameters()):
            torch.testing.assert_close(q.detach(), p, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name, overrides, make_torch", TORCH_CASES[:4], ids=lambda v: v if isinstance(v, str) else "")
def test_complete_graph_sgd_equals_torch_sgd_on_the_averaged_gradient(name, overrides, make_torch):
    """Adapt-then-combine with exact averaging keeps all nodes equal, and averaging is linear,
    so SGD and momentum follow the centralized trajectory (combine-then-adapt does not: each
    node then adds its own gradient after averaging)."""
    n = 4
    expected = _torch_trajectory(make_torch, _averaged_gradient(n))
    for model in _run_nodes(complete(n), name, [*overrides, "optimizer.order=atc"]):
        for p, q in zip(expected, model.parameters()):
            torch.testing.assert_close(q.detach(), p, rtol=1e-6, atol=1e-9)


def test_named_presets_resolve_to_the_right_rules():
    assert _run_nodes(ring(1), "allreduce_adam", []) is not None
    a = _run_nodes(ring(3), "allreduce_adam", ["optimizer.lr=0.01"])
    b = _run_nodes(ring(3), "adam", ["optimizer.lr=0.01", "optimizer.gossip=allreduce"])
    for p, q in zip(a[0].parameters(), b[0].parameters()):
        assert torch.equal(p, q)


# --- least squares across nodes: f_i(x) = 0.5 ||A_i x - b_i||^2, heterogeneous local optima ---

D, N = 10, 8


def least_squares(seed=0):
    return heterogeneous_least_squares(N, D, seed=seed)


class Vector(nn.Module):
    def __init__(self, x0):
        super().__init__()
        self.x = nn.Parameter(x0.clone())


def solve(name, steps, *overrides, compressor=NONE, topology=None, observe=None):
    """Run ``name`` on the least-squares problem with full local gradients; each node's final x."""
    a, b, _ = least_squares()
    topology = topology or ring(N)
    cfg = opt_cfg(name, *overrides)

    def node(comm):
        model = Vector(torch.zeros(D, dtype=torch.float64))
        flat = FlatParameters(model)
        opt = make(cfg, flat, comm, compressor=compressor)
        i = comm.rank
        for _ in range(steps):
            flat.grads.copy_(a[i].T @ (a[i] @ flat.params - b[i]))
            opt.step()
            if observe is not None:
                observe(comm, opt)
        return flat.params.clone()

    return torch.stack(run_local(topology, node))


def relative_error(xs, x_star):
    return ((xs - x_star).norm(dim=1).max() / x_star.norm()).item()


TOPK = {"name": "topk", "ratio": 0.3}


@pytest.mark.slow
def test_gradient_tracking_reaches_the_exact_optimum_and_dsgd_stalls_at_a_step_size_bias():
    """Constant step sizes, full local gradients, ring of 8 (spectral gap 0.195)."""
    *_, x_star = least_squares()
    assert relative_error(solve("gt_dsgd", 400, "optimizer.lr=0.005"), x_star) < 1e-6
    assert relative_error(solve("gt_dsgd", 400, "optimizer.lr=0.005", "optimizer.order=atc"), x_star) < 1e-6
    beer = solve("beer", 1200, "optimizer.lr=0.004", "optimizer.gamma=0.3", compressor=TOPK)
    assert relative_error(beer, x_star) < 1e-6
    # D-PSGD settles (the error no longer moves) at a distance from x* that shrinks with the step
    settled = [relative_error(solve("dsgd", steps, "optimizer.lr=0.004"), x_star) for steps in (800, 1600)]
    assert settled[0] > 0.1 and settled[1] == pytest.approx(settled[0], rel=1e-6)
    smaller_step = relative_error(solve("dsgd", 1600, "optimizer.lr=0.002"), x_star)
    assert smaller_step < 0.6 * settled[1]


def test_choco_with_identity_and_gamma_1_equals_dsgd_adapt_then_combine():
    choco = solve("choco_sgd", 30, "optimizer.lr=0.01", "optimizer.gamma=1.0", topology=ring(5))
    dsgd = solve("dsgd", 30, "optimizer.lr=0.01", "optimizer.order=atc", topology=ring(5))
    torch.testing.assert_close(choco, dsgd, rtol=1e-12, atol=1e-12)
    squeeze = solve("deepsqueeze", 30, "optimizer.lr=0.01", "optimizer.gamma=1.0", topology=ring(5))
    torch.testing.assert_close(squeeze, dsgd, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name, overrides, compressor", [
    ("gt_dsgd", [], NONE), ("gt_dsgd", ["optimizer.order=atc"], NONE),
    ("gt_dsgd", [], TOPK), ("cdproxsgt", [], TOPK), ("dashco", [], TOPK),
])
def test_tracking_keeps_the_mean_of_y_equal_to_the_mean_gradient(name, overrides, compressor):
    gaps = []

    def observe(comm, opt):
        # mean over nodes of y and of the current gradients (exact reductions)
        pair = torch.stack([opt.estimate.y, opt.estimate.g_prev])
        comm.allreduce_(pair, "mean")
        gaps.append(((pair[0] - pair[1]).norm() / pair[1].norm()).item())

    solve(name, 40, "optimizer.lr=0.005", *overrides, compressor=compressor, topology=ring(5), observe=observe)
    assert max(gaps) < 1e-12


# --- every algorithm: builds from its preset, trains, resumes exactly ---

@pytest.mark.parametrize("name", sorted(set(ALGORITHMS) - set(ALGORITHMS.with_fact("asynchronous"))))
@pytest.mark.parametrize("compressor", [NONE, TOPK], ids=["none", "topk"])
def test_every_algorithm_resumes_bit_exactly(name, compressor):
    if not ALGORITHMS[name].facts["compressible"] and compressor != NONE:
        pytest.skip("exact-gossip algorithm")
    a, b, _ = least_squares()
    topology = ring(3)
    cfg = opt_cfg(name, "optimizer.lr=0.001")

    def node(comm, split):
        model = Vector(torch.zeros(D, dtype=torch.float64))
        flat = FlatParameters(model)
        opt = make(cfg, flat, comm, compressor=compressor)
        i = comm.rank

        def closure():
            flat.grads.copy_(a[i].T @ (a[i] @ flat.params - b[i]))

        for step in range(12):
            if step == split:  # rebuild from a saved state, as a resumed run does
                state, x = copy.deepcopy(opt.state_dict()), flat.params.clone()
                model = Vector(x)
                flat = FlatParameters(model)
                opt = make(cfg, flat, comm, compressor=compressor)
                opt.load_state_dict(state)
            closure()
            opt.step(closure=closure)
        return flat.params.clone()

    straight = run_local(topology, lambda comm: node(comm, split=None))
    resumed = run_local(topology, lambda comm: node(comm, split=5))
    for s, r in zip(straight, resumed):
        assert torch.equal(s, r)
        assert torch.isfinite(s).all()


@pytest.mark.parametrize("overrides, message", [
    (["optimizer=dsgd"], "optimizer.gossip=exact sends uncompressed vectors, but compressor=topk"),
    (["optimizer=sgd", "optimizer.comm_set=[x,v]"], "optimizer.comm_set must list x and any of m for sgd"),
    (["optimizer=adam", "optimizer.gossip=exact"], "optimizer.gossip=exact sends uncompressed vectors"),
    (["optimizer=sgd", "optimizer.gossip=local"], "optimizer.gossip=local averages over all nodes"),
    (["optimizer=sgd", "optimizer.gamma=0"], "optimizer.gamma must be > 0 and <= 1"),
    (["optimizer=sgd", "optimizer.order=ca"], "optimizer.order must be one of atc, cta"),
    (["optimizer=dadam", "optimizer.betas=[0.9,0.9]"], "optimizer.betas must be three numbers"),
    (["optimizer=sgd", "optimizer.nesterov=true"], "optimizer.nesterov needs optimizer.momentum > 0"),
    (["optimizer=adam", "optimizer.betas=[0.9,1.0]"], r"optimizer.betas\[1\] must be >= 0 and < 1"),
])
def test_bad_optimizer_settings_are_one_line_errors(overrides, message):
    cfg = compose_config(*overrides).optimizer
    with pytest.raises(UserError, match=message):
        run_local(ring(2), lambda comm: make(cfg, FlatParameters(Vector(torch.zeros(4))), comm, compressor=TOPK))


@pytest.mark.parametrize("name", ["sgd", "choco_sgd", "beer", "docom", "deepsqueeze", "damsco"])
def test_error_feedback_on_top_of_a_compressed_copy_is_refused(name):
    cfg = opt_cfg(name)
    with pytest.raises(UserError, match="does not combine with"):
        run_local(ring(2), lambda comm: make(cfg, FlatParameters(Vector(torch.zeros(4))), comm,
                                             compressor={**TOPK, "error_feedback": True}))


def test_overlapped_exchange_gives_the_same_trajectory():
    """dsgd with overlap=true posts x_t's exchange before the gradient is computed; the
    arithmetic is the same, so the trajectory is identical."""
    a, b, _ = least_squares()

    def run(overlap):
        cfg = opt_cfg("dsgd", "optimizer.lr=0.004", f"optimizer.overlap={str(overlap).lower()}")

        def node(comm):
            flat = FlatParameters(Vector(torch.zeros(D, dtype=torch.float64)))
            opt = make(cfg, flat, comm)
            i = comm.rank
            for _ in range(25):
                opt.begin_step()
                flat.grads.copy_(a[i].T @ (a[i] @ flat.params - b[i]))
                opt.step()
            return flat.params.clone()

        return torch.stack(run_local(ring(5), node))

    assert torch.equal(run(True), run(False))
    atc = opt_cfg("sgd", "optimizer.overlap=true")
    with pytest.raises(UserError, match=r"optimizer\.overlap sends x_t while the gradient is computed"):
        run_local(ring(2), lambda comm: make(atc, FlatParameters(Vector(torch.zeros(4))), comm))


@pytest.mark.parametrize("overrides, topology, expected", [
    (["optimizer=dsgd"], ring(3), True),  # the default: on where the form allows
    (["optimizer=dsgd", "optimizer.overlap=false"], ring(3), False),
    (["optimizer=dsgd", "optimizer.period=4"], ring(3), False),  # not possible: off, no error
    (["optimizer=dsgd", "optimizer.tracking=true"], ring(3), False),
    (["optimizer=dsgd"], disconnected(3), False),  # nobody to talk to
    (["optimizer=sgd"], ring(3), False),  # adapt-then-combine
])
def test_overlap_defaults_to_on_where_possible(overrides, topology, expected):
    cfg = opt_cfg(overrides[0].split("=")[1], *overrides[1:])
    found = run_local(topology, lambda comm: make(cfg, FlatParameters(Vector(torch.zeros(4))), comm).overlap)
    assert found == [expected] * topology.n


def test_lr_schedules():
    constant = LRSchedule("constant", steps_per_epoch=10, epochs=5)
    assert [constant.multiplier(t) for t in (0, 49)] == [1.0, 1.0]
    warm = LRSchedule("cosine", steps_per_epoch=10, epochs=5, warmup_epochs=1)
    assert warm.multiplier(0) == pytest.approx(0.1) and warm.multiplier(9) == pytest.approx(1.0)
    assert warm.multiplier(10) == pytest.approx(1.0) and warm.multiplier(30) == pytest.approx(0.5)
    assert warm.multiplier(50) == pytest.approx(0.0)
    step = LRSchedule("step", steps_per_epoch=10, epochs=5, milestones=[2, 4], decay=0.5)
    assert [step.multiplier(t) for t in (19, 20, 39, 40)] == [1.0, 0.5, 0.5, 0.25]
    with pytest.raises(UserError, match=r"trainer\.lr_schedule must be one of constant, step, cosine"):
        LRSchedule("linear", 10, 5)
    with pytest.raises(UserError, match=r"needs trainer\.lr_milestones"):
        LRSchedule("step", 10, 5)
