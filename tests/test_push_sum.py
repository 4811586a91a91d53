"""Push-sum and SGP on directed graphs (oracles: a numpy reference, the preserved sums, the
step-size neighbourhood), and SQuARM-SGD's event trigger (c = 0 is the untriggered method;
c > 0 sends fewer bytes, counted exactly)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import compoptim
from compoptim.comm import run_local
from compoptim.errors import UserError
from compoptim.optim.gossip import PushSumGossip
from compoptim.topology import Topology, ring
from compoptim.topology.builders import directed_exponential, one_peer_directed_exponential
from compoptim.topology.directed import directed_from_pairs, push_weights
from tests.test_optim import D, N, least_squares, relative_error, solve

# 8 nodes: a directed ring plus chords, irregular out-degrees: W is column but not row stochastic.
LINKS = [(i, (i + 1) % N) for i in range(N)] + [(0, 3), (0, 5), (2, 6), (4, 1), (5, 2), (7, 3)]
DIGRAPH = Topology("digraph", (push_weights(directed_from_pairs(N, LINKS)),), directed=True)


def sgp_nodes(topology, steps, *overrides):
    """SGP on the heterogeneous least-squares problem, full local gradients; each node's de-biased x."""
    return solve("sgp", steps, *overrides, topology=topology)


def sgp_reference(topology, steps, lr):
    """Assran et al. 2019, Algorithm 1, in numpy: z = u / w; u <- P (u - lr grad(z)); w <- P w."""
    a, b, _ = (t.numpy() for t in least_squares())
    u, w = np.zeros((N, D)), np.ones(N)
    for t in range(steps):
        z = u / w[:, None]
        grads = np.stack([a[i].T @ (a[i] @ z[i] - b[i]) for i in range(N)])
        p = topology.matrix(t)
        u, w = p @ (u - lr * grads), p @ w
    return u / w[:, None]


@pytest.mark.parametrize("topology", [DIGRAPH, one_peer_directed_exponential(N)], ids=["digraph", "one_peer"])
def test_sgp_matches_the_numpy_reference_iterate_by_iterate(topology):
    for steps in (1, 2, 7, 40):
        ours = sgp_nodes(topology, steps, "optimizer.lr=0.01").numpy()
        np.testing.assert_allclose(ours, sgp_reference(topology, steps, 0.01), rtol=1e-12, atol=1e-13)


@pytest.mark.slow  # 13 s: long runs at two step sizes
def test_sgp_settles_in_a_neighbourhood_of_the_optimum_that_shrinks_with_the_step_size():
    """Heterogeneous local optima, constant step: SGP (like D-PSGD) settles at an O(lr) distance from x*."""
    *_, x_star = least_squares()
    errors = {lr: relative_error(sgp_nodes(DIGRAPH, 3000, f"optimizer.lr={lr}"), x_star) for lr in (0.004, 0.002)}
    assert errors[0.004] < 0.5
    assert errors[0.002] / errors[0.004] == pytest.approx(0.5, abs=0.1)
    settled = relative_error(sgp_nodes(DIGRAPH, 4000, "optimizer.lr=0.004"), x_star)
    assert settled == pytest.approx(errors[0.004], rel=1e-6)  # settled, not still moving


def test_push_sum_preserves_the_sums_and_reaches_the_exact_average():
    """Gossip alone (no gradient): sum_i u_i and sum_i w_i = n are kept each round, and the de-biased
    values reach the average of the starting values to 1e-12 in float64."""
    starts = torch.randn(N, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    compressor = __import__("compoptim.compress", fromlist=["Identity"]).Identity(
        __import__("compoptim.compress", fromlist=["CompressContext"]).CompressContext(dtype=torch.float64))

    def node(comm):
        v = starts[comm.rank].clone()
        gossip = PushSumGossip(comm, compressor, v)
        sums = []
        for step in range(300):
            gossip(v, step)
            total = torch.cat([gossip.numerator, gossip.weight]).clone()
            sums.append(comm.allreduce_(total, "sum"))
        return v, sums

    results = run_local(DIGRAPH, node)
    for v, _ in results:
        torch.testing.assert_close(v, starts.mean(dim=0), rtol=0, atol=1e-12)
    for total in results[0][1]:
        torch.testing.assert_close(total[:-1], starts.sum(dim=0), rtol=0, atol=1e-12)
        assert total[-1].item() == pytest.approx(N, abs=1e-12)


def test_sgp_on_an_undirected_graph_keeps_weights_at_one_and_is_dsgd_in_atc_form():
    """A symmetric doubly stochastic W keeps every push-sum weight at 1: SGP is then D-PSGD (ATC)."""
    sgp = sgp_nodes(ring(N), 30, "optimizer.lr=0.01")
    dsgd = solve("dsgd", 30, "optimizer.lr=0.01", "optimizer.order=atc")
    torch.testing.assert_close(sgp, dsgd, rtol=1e-12, atol=1e-12)


def test_sgp_refuses_what_push_sum_cannot_do():
    for override, message in [("optimizer.order=cta", "needs optimizer.order=atc"),
                              ("optimizer.tracking=true", "needs optimizer.order=atc, no tracking")]:
        with pytest.raises(UserError, match=message):
            sgp_nodes(directed_exponential(N), 1, override)


def test_a_directed_topology_needs_a_push_sum_method(in_tmp):
    with pytest.raises(UserError, match=r"topology=directed_ring is directed .* but optimizer=dsgd needs an "
                                        "undirected topology .* use optimizer=sgp"):
        compoptim.run(["topology=directed_ring", "optimizer=dsgd", "backend.nodes=3", "trainer.epochs=1"])
    assert not list((in_tmp / "outputs").rglob("metrics.csv"))


@pytest.mark.slow
def test_sgp_trains_lenet_on_digits_over_a_directed_one_peer_graph(in_tmp):
    result = compoptim.run(["optimizer=sgp", "topology=one_peer_directed_exponential", "backend.nodes=4",
                            "trainer.epochs=10"])
    assert result.summary["status"] == "finished" and result.summary["topology"]["directed"] is True
    # measured: 0.955 at epoch 9, 0.903 at 10 (D-PSGD on the undirected one-peer graph: 0.53 after 4)
    assert result.metrics["test_acc"].max() >= 0.93 and result.metrics["test_acc"].iloc[-1] >= 0.88
    # one out-neighbour per round: (numel + 1) floats per step (the numerator and the weight)
    steps, numel = int(result.metrics["step"].iloc[-1]), result.summary["num_params"]
    assert result.metrics["bytes_sent_per_node"].iloc[-1] == steps * (numel + 1) * 4
