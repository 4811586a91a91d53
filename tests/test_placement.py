"""Pipeline stages placed on a topology: replicas are disjoint paths, consecutive stages one hop apart."""

import itertools

import pytest

from compoptim.errors import UserError
from compoptim.parallel.placement import place_stages
from compoptim.topology import complete, hypercube, one_peer_exponential, ring, star, torus


def check_cover(placement, n, stages):
    ranks = [r for replica in placement.replicas for r in replica]
    assert sorted(ranks) == list(range(n)) and all(len(p) == stages for p in placement.replicas)
    assert len(placement.hops) == (n // stages) * (stages - 1)


@pytest.mark.parametrize("topology, stages", [(ring(8), 2), (ring(8), 4), (ring(8), 8), (torus(16), 4),
                                              (hypercube(16), 8), (complete(6), 3), (one_peer_exponential(8), 2),
                                              (ring(12), 3)])
def test_consecutive_stages_are_neighbours(topology, stages):
    placement = place_stages(topology, stages)
    check_cover(placement, topology.n, stages)
    assert placement.one_hop
    for replica in placement.replicas:
        for a, b in itertools.pairwise(replica):
            assert any(b in topology.neighbors(a, r) for r in range(topology.period))
    rank = placement.replicas[-1][-1]
    assert placement.stage_of(rank) == (len(placement.replicas) - 1, stages - 1)


def test_where_no_path_exists_rank_order_and_its_hops_are_said():
    placement = place_stages(star(6), 3)  # leaves meet only through the hub: no 3 disjoint 3-paths
    check_cover(placement, 6, 3)
    assert placement.replicas == ((0, 1, 2), (3, 4, 5)) and not placement.one_hop
    assert placement.hops == (1, 2, 2, 2)


def test_one_stage_is_data_parallel_and_stages_must_divide_the_ranks():
    assert place_stages(ring(4), 1).replicas == ((0,), (1,), (2,), (3,)) and place_stages(ring(4), 1).hops == ()
    with pytest.raises(UserError, match=r"parallel.stages=3 must divide the 8 ranks \(mpirun -np 8\)"):
        place_stages(ring(8), 3)
