import math

import numpy as np
import pytest

from compoptim.errors import UserError
from compoptim.topology import Topology, build_topology, complete, ring


@pytest.mark.parametrize("n", range(1, 18))
@pytest.mark.parametrize("builder", [ring, complete])
def test_mixing_matrix_is_symmetric_doubly_stochastic_connected(builder, n):
    topo = builder(n)
    w = topo.matrix()
    assert w.shape == (n, n)
    np.testing.assert_allclose(w.sum(axis=0), 1.0, atol=1e-12)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(w, w.T)
    assert (w >= 0).all()
    # connected: W^n has no zero entry
    assert (np.linalg.matrix_power(w + np.eye(n), n) > 0).all()
    self_w, nbrs = topo.weights(0)
    assert self_w + sum(nbrs.values()) == pytest.approx(1.0)
    assert list(nbrs) == sorted(nbrs)


@pytest.mark.parametrize("n", range(3, 18))
def test_ring_uniform_weights_and_known_spectral_gap(n):
    topo = ring(n)
    self_w, nbrs = topo.weights(0)
    assert self_w == pytest.approx(1 / 3)
    assert nbrs == {1: pytest.approx(1 / 3), n - 1: pytest.approx(1 / 3)}
    assert topo.spectral_gap == pytest.approx(1 - (1 + 2 * math.cos(2 * math.pi / n)) / 3, abs=1e-12)


def test_ring_small_n():
    assert ring(1).neighbors(0) == []
    assert ring(1).spectral_gap == pytest.approx(1.0)
    assert ring(2).weights(0) == (0.5, {1: 0.5})
    assert ring(2).spectral_gap == pytest.approx(1.0)


@pytest.mark.parametrize("n", range(2, 18))
def test_complete_graph_is_exact_averaging(n):
    topo = complete(n)
    assert topo.spectral_gap == pytest.approx(1.0)
    assert topo.distance_to_average == pytest.approx(0.0, abs=1e-12)
    assert topo.neighbors(0) == list(range(1, n))


@pytest.mark.parametrize(
    "matrix, message",
    [
        ([[0.5, 0.5], [0.2, 0.8]], "symmetric"),
        ([[0.6, 0.6], [0.6, 0.6]], "doubly stochastic"),
        ([[1.0, 0.0], [0.0, 1.0]], "not connected"),
        ([[1.5, -0.5], [-0.5, 1.5]], "non-negative"),
    ],
)
def test_invalid_mixing_matrices_are_refused(matrix, message):
    with pytest.raises(UserError, match=message):
        Topology("custom", (np.array(matrix),))


def test_build_topology_by_name_and_errors():
    assert build_topology({"name": "ring"}, 5).n == 5
    with pytest.raises(UserError, match="unknown topology 'torus'; available: complete, ring"):
        build_topology({"name": "torus"}, 4)
    with pytest.raises(UserError, match="n >= 1"):
        ring(0)


def test_topology_is_immutable():
    topo = ring(4)
    with pytest.raises(ValueError):
        topo.matrix()[0, 0] = 1.0
