import math

import numpy as np
import pytest

from compoptim.errors import UserError
from compoptim.topology import (
    TOPOLOGIES,
    WEIGHT_RULES,
    Topology,
    build_topology,
    complete,
    erdos_renyi,
    exponential,
    from_edges,
    hypercube,
    metropolis_hastings,
    mixing_matrix,
    one_peer_exponential,
    ring,
    star,
    torus,
)
from compoptim.topology.base import is_connected
from tests.test_directed import check_push_weights

POWERS_OF_TWO = (1, 2, 4, 8, 16)
# Every builder with the n it admits in 1..17 (erdos_renyi with p = 0.6 is connected for all).
CASES = [(b, n) for b in (ring, torus, star, complete, exponential, one_peer_exponential) for n in range(1, 18)]
CASES += [(hypercube, n) for n in POWERS_OF_TWO]
CASES += [(lambda n: erdos_renyi(n, p=0.6, seed=n), n) for n in range(1, 18)]


def _check_mixing(topo: Topology) -> None:
    n = topo.n
    for r in range(topo.period):
        w = topo.matrix(r)
        assert w.shape == (n, n)
        np.testing.assert_allclose(w.sum(axis=0), 1.0, atol=1e-12)
        np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
        np.testing.assert_array_equal(w, w.T)
        assert (w >= 0).all()
        for i in range(n):
            self_w, nbrs = topo.weights(i, r)
            assert list(nbrs) == sorted(nbrs) and i not in nbrs
            assert self_w + sum(nbrs.values()) == pytest.approx(1.0)
    union = sum(topo.matrix(r) for r in range(topo.period)) > 0
    # connected: (A + I)^n has no zero entry
    assert (np.linalg.matrix_power(union.astype(float) + np.eye(n), n) > 0).all()
    assert 0.0 <= topo.spectral_gap <= 1.0


@pytest.mark.parametrize("builder, n", CASES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_every_builder_gives_a_valid_mixing_matrix_for_n_1_to_17(builder, n):
    topo = builder(n)
    assert topo.n == n
    _check_mixing(topo)
    if not topo.is_time_varying and n > 1:
        assert is_connected(topo.matrix() > 0)


@pytest.mark.parametrize("n", range(3, 18))
def test_ring_uniform_weights_and_known_spectral_gap(n):
    topo = ring(n)
    self_w, nbrs = topo.weights(0)
    assert self_w == pytest.approx(1 / 3)
    assert nbrs == {1: pytest.approx(1 / 3), n - 1: pytest.approx(1 / 3)}
    assert topo.spectral_gap == pytest.approx(1 - (1 + 2 * math.cos(2 * math.pi / n)) / 3, abs=1e-12)


def test_small_n():
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


@pytest.mark.parametrize("n", [2, 4, 8, 16])
def test_hypercube_spectrum(n):
    # eigenvalues of the uniform hypercube W are 1 - 2k/(d+1), k = 0..d
    d = int(math.log2(n))
    assert hypercube(n).spectral_gap == pytest.approx(2 / (d + 1))


@pytest.mark.parametrize("rows, cols", [(2, 3), (3, 3), (3, 4), (4, 4), (3, 5)])
def test_torus_spectrum_is_the_product_of_two_cycles(rows, cols):
    # W = (I + A_rows (x) I + I (x) A_cols)/5 when both sides are >= 3 (degree 4)
    topo = torus(rows * cols, rows=rows, cols=cols)
    if min(rows, cols) >= 3:
        lam = sorted({(1 + 2 * math.cos(2 * math.pi * a / rows) + 2 * math.cos(2 * math.pi * b / cols)) / 5
                      for a in range(rows) for b in range(cols)}, key=abs, reverse=True)
        moduli = sorted((abs(v) for v in np.linalg.eigvalsh(topo.matrix())), reverse=True)
        assert moduli[1] == pytest.approx(max(abs(v) for v in lam if not math.isclose(v, 1.0)))
    assert topo.params["rows"] == rows and topo.params["cols"] == cols


def test_torus_chooses_a_near_square_shape():
    assert torus(12).params == {"rows": 3, "cols": 4, "weights": "auto", "lazy": 0.0}
    assert torus(6, cols=2).params["rows"] == 3
    assert (torus(7).params["rows"], torus(7).params["cols"]) == (1, 7)  # prime n: a ring
    with pytest.raises(UserError, match=r"torus needs n = rows\*cols; got n=7 with rows=2"):
        torus(7, rows=2)
    with pytest.raises(UserError, match=r"got n=6 with rows=2, cols=2"):
        torus(6, rows=2, cols=2)


@pytest.mark.parametrize("n", range(2, 18))
def test_star_uses_metropolis_hastings(n):
    topo = star(n)
    assert topo.neighbors(0) == list(range(1, n))
    leaf_self, leaf_nbrs = topo.weights(1)
    assert leaf_nbrs == {0: pytest.approx(1 / n)}
    assert leaf_self == pytest.approx(1 - 1 / n)
    if n > 2:
        with pytest.raises(UserError, match="uniform weights need a regular graph"):
            star(n, weights="uniform")


def test_metropolis_hastings_on_an_irregular_path_graph():
    a = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=float)
    w = metropolis_hastings(a)
    np.testing.assert_allclose(w, [[2 / 3, 1 / 3, 0], [1 / 3, 1 / 3, 1 / 3], [0, 1 / 3, 2 / 3]])


def test_laziness_shrinks_the_gap_and_keeps_w_valid():
    lazy = ring(8, lazy=0.5)
    _check_mixing(lazy)
    assert lazy.weights(0)[0] == pytest.approx(0.5 + 0.5 / 3)
    assert lazy.spectral_gap == pytest.approx(0.5 * ring(8).spectral_gap)
    np.testing.assert_allclose(mixing_matrix(np.zeros((1, 1)), "auto", 0.3), [[1.0]])
    for bad in (-0.1, 1.0):
        with pytest.raises(UserError, match=r"topology\.lazy must be >= 0 and < 1"):
            ring(4, lazy=bad)
    with pytest.raises(UserError, match=r"topology\.weights must be one of auto, uniform, metropolis_hastings"):
        ring(4, weights="equal")


@pytest.mark.parametrize("n", range(1, 18))
def test_exponential_graph_neighbours(n):
    hops = [2**k for k in range(n.bit_length()) if 2**k < n]
    expected = sorted({(h) % n for h in hops} | {(-h) % n for h in hops} - {0})
    assert exponential(n).neighbors(0) == expected


@pytest.mark.parametrize("n", range(2, 18))
def test_one_peer_exponential_has_one_peer_per_round(n):
    topo = one_peer_exponential(n)
    assert topo.is_time_varying == (n > 2)
    for r in range(topo.period):
        assert all(len(topo.neighbors(i, r)) <= 1 for i in range(n))
        assert all(w == pytest.approx(0.5) for _, _, w in topo.edges(r))
    # the union over a period is the hypercube (n a power of two) or the static exponential graph
    static = hypercube(n) if n & (n - 1) == 0 else exponential(n)
    union = {(i, j) for r in range(topo.period) for i, j, _ in topo.edges(r)}
    assert union == {(i, j) for i, j, _ in static.edges()}
    # over a period node 0 meets each of its static neighbours
    peers = [topo.neighbors(0, r) for r in range(topo.period)]
    assert {p[0] for p in peers if p} == set(static.neighbors(0))


@pytest.mark.parametrize("n", [2, 4, 8, 16])
def test_one_peer_exponential_averages_exactly_over_a_period_for_powers_of_two(n):
    topo = one_peer_exponential(n)
    product = np.eye(n)
    for r in range(topo.period):
        product = topo.matrix(r) @ product
    np.testing.assert_allclose(product, np.full((n, n), 1 / n), atol=1e-12)
    assert topo.spectral_gap == pytest.approx(1.0)


def test_erdos_renyi_is_seeded_connected_or_refused():
    a, b = erdos_renyi(12, p=0.3, seed=5), erdos_renyi(12, p=0.3, seed=5)
    np.testing.assert_array_equal(a.matrix(), b.matrix())
    assert not np.array_equal(a.matrix(), erdos_renyi(12, p=0.3, seed=6).matrix())
    assert a.params["draws"] >= 1 and a.params["seed"] == 5
    with pytest.raises(UserError, match=r"disconnected in all 1000 draws; raise topology.p"):
        erdos_renyi(30, p=0.01, seed=0)
    with pytest.raises(UserError, match=r"topology\.p must be > 0 and <= 1"):
        erdos_renyi(5, p=0.0)


def test_from_edges_reads_a_user_graph(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text("# a path 0-1-2 plus a chord\n0 1\n1,2  # comma works\n\n2 0\n")
    topo = from_edges(3, path=str(path))
    np.testing.assert_allclose(topo.matrix(), np.full((3, 3), 1 / 3))
    assert build_topology({"name": "from_edges", "path": str(path)}, 3).n == 3
    path.write_text("0 1\n1 5\n")
    with pytest.raises(UserError, match=r"line 2: edge \(1, 5\) names a node outside 0..3"):
        from_edges(4, path=str(path))
    path.write_text("0 1\n2 3\n")
    with pytest.raises(UserError, match="not connected"):
        from_edges(4, path=str(path))
    path.write_text("0 x\n")
    with pytest.raises(UserError, match="expected two node numbers"):
        from_edges(2, path=str(path))
    with pytest.raises(UserError, match="cannot read the edge list"):
        from_edges(2, path=str(tmp_path / "missing.txt"))
    with pytest.raises(UserError, match=r"needs topology\.path"):
        from_edges(2)


@pytest.mark.parametrize("n", [1, 2, 7])
def test_none_is_local_training_only(n):
    topo = build_topology({"name": "none"}, n)
    np.testing.assert_array_equal(topo.matrix(), np.eye(n))
    assert all(topo.neighbors(i) == [] for i in range(n))
    assert topo.spectral_gap == (1.0 if n == 1 else 0.0)
    assert build_topology({"name": "disconnected"}, n).name == "none"


def test_hypercube_needs_a_power_of_two():
    with pytest.raises(UserError, match=r"hypercube needs n to be a power of two .* got n=6: use topology=exponential"):
        hypercube(6)


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


def test_time_varying_connectivity_rules():
    pair_01 = np.array([[0.5, 0.5, 0], [0.5, 0.5, 0], [0, 0, 1.0]])
    pair_12 = np.array([[1.0, 0, 0], [0, 0.5, 0.5], [0, 0.5, 0.5]])
    with pytest.raises(UserError, match="not connected in round 0"):
        Topology("tv", (pair_01, pair_12))
    assert Topology("tv", (pair_01, pair_12), connected="period").period == 2
    with pytest.raises(UserError, match="not connected over its period"):
        Topology("tv", (pair_01, pair_01), connected="period")


def test_build_topology_by_name_and_errors():
    assert build_topology({"name": "ring"}, 5).n == 5
    assert build_topology({"name": "torus", "rows": 2, "cols": None, "weights": "auto", "lazy": 0.0}, 6).n == 6
    with pytest.raises(UserError, match="unknown topology 'tor'; available: complete, directed_exponential, "
                                        "directed_ring, disconnected, "):
        build_topology({"name": "tor"}, 4)
    with pytest.raises(UserError, match="n >= 1"):
        ring(0)
    assert set(TOPOLOGIES) >= {"ring", "torus", "star", "complete", "hypercube", "exponential",
                               "one_peer_exponential", "erdos_renyi", "from_edges", "none"}


# Every registered topology and the n this file builds it for by name, with its defaults: one
# registered without a line here fails the first test below, so none ships untested.
BY_NAME = {"ring": 5, "torus": 6, "star": 5, "complete": 4, "hypercube": 8, "exponential": 7,
           "one_peer_exponential": 6, "erdos_renyi": 6, "from_edges": 3, "none": 3, "disconnected": 3,
           "random_matching": 7, "directed_ring": 5, "directed_exponential": 6,
           "one_peer_directed_exponential": 8, "from_directed_edges": 3}


def test_every_registered_topology_is_tested():
    assert set(TOPOLOGIES) == set(BY_NAME)


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_every_topology_builds_by_name_with_its_defaults(name, tmp_path):
    settings = TOPOLOGIES[name].defaults()
    if name in ("from_edges", "from_directed_edges"):
        (tmp_path / "g.txt").write_text("0 1\n1 2\n2 0\n")
        settings["path"] = str(tmp_path / "g.txt")
    n = BY_NAME[name]
    topo = build_topology({"name": name, **settings}, n)
    assert topo.n == n
    if name in ("none", "disconnected"):
        np.testing.assert_array_equal(topo.matrix(), np.eye(n))
    elif topo.directed:
        check_push_weights(topo)
    else:
        _check_mixing(topo)


@pytest.mark.parametrize("rule", list(WEIGHT_RULES))
def test_every_weight_rule_gives_a_valid_mixing_matrix(rule):
    topo = ring(6, weights=rule)
    assert topo.params["weights"] == rule
    _check_mixing(topo)


def test_describe_and_json_for_the_summary_and_the_picture():
    topo = torus(6)
    info = topo.describe()
    assert info["spectral_gap"] == pytest.approx(topo.spectral_gap)
    assert info["distance_to_average"] == pytest.approx(1 - topo.spectral_gap)
    assert info["max_degree"] == 3
    spec = topo.to_json()
    assert len(spec["rounds"]) == 1 and len(spec["rounds"][0]["edges"]) == 9


def test_topology_is_immutable():
    topo = ring(4)
    with pytest.raises(ValueError):
        topo.matrix()[0, 0] = 1.0


@pytest.mark.parametrize("n", [2, 3, 8, 9, 33])
def test_random_matching_pairs_every_node_once_per_round_and_is_seeded(n):
    from compoptim.topology import random_matching

    topo = random_matching(n, period=12, seed=5)
    assert topo.period == 12 and topo.is_time_varying
    for r in range(topo.period):
        w = topo.matrix(r)
        assert np.allclose(w, w.T) and np.allclose(w.sum(0), 1) and np.allclose(w.sum(1), 1)
        degrees = [len(topo.neighbors(i, r)) for i in range(n)]
        assert sorted(degrees) == [0] * (n % 2) + [1] * (n - n % 2)  # a matching: one node sits out for odd n
        for i in range(n):
            for j in topo.neighbors(i, r):
                assert w[i, j] == pytest.approx(0.5) and w[i, i] == pytest.approx(0.5)
    union = sum((topo.matrix(r) > 0).astype(int) for r in range(topo.period))
    assert is_connected(union > 0)
    again, other = random_matching(n, period=12, seed=5), random_matching(n, period=12, seed=6)
    assert all(np.array_equal(topo.matrix(r), again.matrix(r)) for r in range(12))
    assert n == 2 or any(not np.array_equal(topo.matrix(r), other.matrix(r)) for r in range(12))


def test_random_matching_refuses_what_cannot_work_in_one_line():
    from compoptim.topology import random_matching

    for kwargs, message in (({"period": 0}, "topology.period must be >= 1"), ({"seed": -1}, "topology.seed must be"),
                            ({"weights": "uniform"}, "random_matching with odd n=5 leaves one node unpaired")):
        with pytest.raises(UserError, match=message):
            random_matching(5, **kwargs)
    with pytest.raises(UserError, match="was disconnected over its period in all"):
        random_matching(64, period=1)  # one matching never connects 64 nodes
