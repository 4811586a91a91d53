"""Directed topologies: column-stochastic push weights, strong connectivity, mixing rate,
and push-sum average consensus (exact average) against plain mixing (biased)."""

from __future__ import annotations

import numpy as np
import pytest

from compoptim.errors import UserError
from compoptim.topology import Topology
from compoptim.topology.builders import (
    build_topology,
    directed_exponential,
    directed_ring,
    from_directed_edges,
    one_peer_directed_exponential,
)


def check_push_weights(topo: Topology) -> None:
    """Non-negative, column stochastic, strongly connected over the period; in/out lists agree with W."""
    n = topo.n
    for r in range(topo.period):
        w = topo.matrix(r)
        assert (w >= 0).all()
        np.testing.assert_allclose(w.sum(axis=0), 1.0, atol=1e-12)
        for i in range(n):
            assert topo.neighbors(i, r) == [j for j in range(n) if j != i and w[i, j] > 0]
            assert topo.out_neighbors(i, r) == [j for j in range(n) if j != i and w[j, i] > 0]
    union = (sum(topo.matrix(r) for r in range(topo.period)) > 0).astype(float) + np.eye(n)
    assert (np.linalg.matrix_power(union, n) > 0).all()  # every node reaches every node


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 12])
@pytest.mark.parametrize("builder", [directed_ring, directed_exponential, one_peer_directed_exponential])
def test_directed_builders_give_valid_push_weights_for_any_n(builder, n):
    topo = builder(n)
    assert topo.directed
    check_push_weights(topo)
    assert 0.0 < topo.spectral_gap <= 1.0


def test_directed_ring_and_exponential_links_and_weights():
    ring = directed_ring(5)
    assert ring.out_neighbors(0) == [1] and ring.neighbors(0) == [4]
    assert ring.weights(0) == (0.5, {4: 0.5})
    exp = directed_exponential(8)  # i -> i+1, i+2, i+4: keeps 1/4, pushes 1/4 to each
    assert exp.out_neighbors(0) == [1, 2, 4] and exp.neighbors(0) == [4, 6, 7]
    assert exp.weights(0) == (0.25, {4: 0.25, 6: 0.25, 7: 0.25})
    assert sorted(exp.edges()) [:3] == [(0, 1, 0.25), (0, 2, 0.25), (0, 4, 0.25)]


def test_one_peer_directed_exponential_averages_exactly_over_its_period_for_powers_of_two():
    topo = one_peer_directed_exponential(16)
    assert topo.period == 4
    for k in range(4):
        assert topo.out_neighbors(3, k) == [(3 + 2 ** k) % 16] and topo.neighbors(3, k) == [(3 - 2 ** k) % 16]
    product = np.linalg.multi_dot([topo.matrix(k) for k in reversed(range(4))])
    np.testing.assert_allclose(product, np.full((16, 16), 1 / 16), atol=1e-15)
    assert topo.spectral_gap == pytest.approx(1.0)
    assert one_peer_directed_exponential(6).spectral_gap < 1.0  # not a power of two: not exact


def test_directed_mixing_rate_is_the_second_eigenvalue_modulus():
    n = 7
    topo = directed_ring(n)
    # W = (I + S)/2 with S the cyclic shift: eigenvalues (1 + e^{2 pi i k/n})/2, |.| = |cos(pi k/n)|
    assert topo.spectral_gap == pytest.approx(1 - abs(np.cos(np.pi / n)))
    assert topo.describe()["directed"] is True and directed_ring(3).describe()["spectral_gap"] > 0


def _write(tmp_path, text: str) -> str:
    path = tmp_path / "links.txt"
    path.write_text(text)
    return str(path)


def test_a_user_digraph_from_an_edge_list(tmp_path):
    # 0 -> 1, 0 -> 2, 1 -> 2, 2 -> 0: out-degrees 2, 1, 1
    topo = build_topology({"name": "from_directed_edges", "path": _write(tmp_path, "0 1\n0 2\n1 2\n2 0\n")}, 3)
    check_push_weights(topo)
    np.testing.assert_allclose(topo.matrix(), [[1 / 3, 0, 1 / 2], [1 / 3, 1 / 2, 0], [1 / 3, 1 / 2, 1 / 2]])
    assert not np.allclose(topo.matrix().sum(axis=1), 1.0)  # column, not row, stochastic


def test_a_digraph_that_is_not_strongly_connected_is_refused(tmp_path):
    with pytest.raises(UserError, match="not strongly connected; choose a strongly connected graph"):
        from_directed_edges(3, _write(tmp_path, "0 1\n1 2\n"))  # nothing reaches 0
    with pytest.raises(UserError, match=r"needs topology.path=FILE"):
        from_directed_edges(3)


def test_push_weights_that_are_not_column_stochastic_are_refused():
    w = np.array([[0.5, 0.5], [0.6, 0.5]])
    with pytest.raises(UserError, match=r"column stochastic.*column 0 sums to 1.1"):
        Topology("mine", (w,), directed=True)
    with pytest.raises(UserError, match=r"topology.lazy must be >= 0 and < 1"):
        directed_ring(4, lazy=1.0)


def test_push_sum_reaches_the_exact_average_where_plain_mixing_is_biased(tmp_path):
    """Push-sum (Kempe et al. 2003): z <- W z, w <- W w, estimate z / w -> mean(z_0) exactly,
    on a digraph whose W is column but not row stochastic. Plain mixing with that W does not
    reach consensus, and row-normalised (row-stochastic) mixing agrees on a biased value."""
    links = "0 1\n0 2\n0 3\n1 2\n2 3\n3 0\n3 4\n4 0\n"
    topo = from_directed_edges(5, _write(tmp_path, links))
    w = topo.matrix()
    x0 = np.random.default_rng(0).normal(size=(5, 3))
    z, weight = x0.copy(), np.ones(5)
    for _ in range(400):
        z, weight = w @ z, w @ weight
    np.testing.assert_allclose(z / weight[:, None], np.broadcast_to(x0.mean(axis=0), (5, 3)), rtol=0, atol=1e-12)
    plain = np.linalg.matrix_power(w, 400) @ x0
    assert np.abs(plain - x0.mean(axis=0)).max() > 1e-2  # column-stochastic mixing alone: no consensus
    row = w / w.sum(axis=1, keepdims=True)
    agreed = np.linalg.matrix_power(row, 400) @ x0
    np.testing.assert_allclose(agreed, np.broadcast_to(agreed[0], (5, 3)), atol=1e-12)  # consensus...
    assert np.abs(agreed[0] - x0.mean(axis=0)).max() > 1e-2  # ...on a weighted, biased average
