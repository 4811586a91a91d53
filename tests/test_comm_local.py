import threading
import time

import pytest
import torch

from compoptim.comm import TrafficCounters, local_network, run_local
from compoptim.compress import CompressContext, Identity
from compoptim.topology import complete, one_peer_exponential, ring


@pytest.mark.parametrize("topology", [ring(1), ring(2), ring(5), complete(4)], ids=lambda t: f"{t.name}{t.n}")
def test_neighbor_mix_equals_w_times_x(topology):
    n, d = topology.n, 37
    xs = torch.randn(n, d, dtype=torch.float64)
    w = torch.tensor(topology.matrix())
    c = Identity(CompressContext(dtype=torch.float64))

    def node(comm):
        x = xs[comm.rank].clone()
        out = torch.empty(d, dtype=torch.float64)
        comm.neighbor_mix(c.encode(x), c, out)
        return out, comm.counters.bytes_sent, comm.counters.bytes_received

    results = run_local(topology, node)
    for i, (out, sent, received) in enumerate(results):
        torch.testing.assert_close(out, w[i] @ xs, rtol=1e-12, atol=1e-12)
        degree = len(topology.neighbors(i))
        assert sent == received == degree * d * 8


def test_allreduce_ops_are_exact():
    topo = ring(3)

    def node(comm):
        v = torch.tensor([float(comm.rank), 10.0 - comm.rank], dtype=torch.float64)
        return [comm.allreduce_(v.clone(), op).tolist() for op in ("sum", "mean", "max", "min")]

    for res in run_local(topo, node):
        assert res == [[3.0, 27.0], [1.0, 9.0], [2.0, 10.0], [0.0, 8.0]]


def test_training_allreduce_counts_its_bytes_and_a_sane_wait():
    def node(comm):
        start = time.perf_counter()
        comm.allreduce_(torch.ones(5, dtype=torch.float64), training=True)
        return comm.counters, time.perf_counter() - start

    for counters, elapsed in run_local(ring(3), node):
        assert (counters.bytes_sent, counters.bytes_received) == (40, 80)
        assert counters.metric_bytes_sent == 0 and 0 <= counters.wait_time_s <= elapsed


def test_an_allreduce_on_one_node_sends_nothing():
    """allreduce_sgd / allreduce_adam on one node are plain SGD / Adam: no bytes counted."""
    from compoptim.topology import build_topology

    def node(comm):
        comm.allreduce_(torch.ones(5), training=True)
        comm.allreduce_(torch.ones(5))
        return comm.counters

    counters = run_local(build_topology({"name": "none"}, 1), node)[0]
    assert (counters.bytes_sent, counters.bytes_received, counters.metric_bytes_sent) == (0, 0, 0)


def test_counters_resume_and_hand_over_the_error_once():
    counters = TrafficCounters(bytes_sent=7, wait_time_s=0.5, encode_count=33, error_sum=0.75, error_count=2)
    resumed = TrafficCounters()
    resumed.load_state_dict(counters.state_dict())
    assert resumed == counters and type(resumed.bytes_sent) is int and type(resumed.wait_time_s) is float
    assert counters.take_compression_error() == (0.75, 2)
    assert counters.take_compression_error() == (0.0, 0) and counters.encode_count == 33


def test_failure_on_one_node_stops_the_others():
    released = threading.Event()

    def node(comm):
        if comm.rank == 1:
            raise RuntimeError("node 1 broke")
        comm.allreduce_(torch.zeros(1))  # would wait forever without the abort
        released.set()

    with pytest.raises(RuntimeError, match="node 1 broke"):
        run_local(ring(3), node)
    assert not released.is_set()


@pytest.mark.parametrize("workers", [1, 2, 5, 32])
def test_many_nodes_mix_in_place_for_many_rounds(workers):
    """32 nodes, x gossiped in place (the payload is x itself) through a time-varying graph,
    with metric reductions in between: after R rounds every node holds (W_R...W_1 X)_i, so no
    node ever read a neighbour's slot after the neighbour had rewritten it."""
    topology = one_peer_exponential(32)
    n, d, rounds = topology.n, 4096, 12
    xs = torch.randn(n, d, dtype=torch.float64)
    expected = xs.clone()
    for r in range(rounds):
        expected = torch.tensor(topology.matrix(r)) @ expected

    class SlowReader(Identity):  # widens the window in which a neighbour could rewrite its slot
        def decode_add(self, payload, out, weight):
            time.sleep(0.0002)
            super().decode_add(payload, out, weight)

    c = SlowReader(CompressContext(dtype=torch.float64))

    def node(comm):
        x = xs[comm.rank].clone()
        for r in range(rounds):
            comm.neighbor_mix(c.encode(x), c, out=x, step=r)
            if r % 5 == 0:
                comm.allreduce_(torch.ones(3), "sum")
        return x

    results = run_local(topology, node, workers=workers)
    torch.testing.assert_close(torch.stack(results), expected, rtol=1e-12, atol=1e-12)


def test_a_failing_node_stops_the_others_on_every_worker_count():
    def node(comm):
        if comm.rank == 3:
            raise RuntimeError("node 3 broke")
        for _ in range(3):
            comm.allreduce_(torch.zeros(1))

    for workers in (1, 2, 8):
        with pytest.raises(RuntimeError, match="node 3 broke") as info:
            run_local(ring(8), node, workers=workers)
        assert info.value.node_rank == 3


def test_a_node_that_returns_early_is_an_error_not_a_hang():
    def node(comm):
        for _ in range(1 if comm.rank == 2 else 3):
            comm.allreduce_(torch.zeros(1))

    for workers in (1, 3):
        with pytest.raises(RuntimeError, match="wait for an exchange"):
            run_local(ring(5), node, workers=workers)


def test_a_communicator_outside_run_nodes_needs_nothing_to_wait_for():
    comm = local_network(ring(1))[0]
    assert comm.allreduce_(torch.ones(2), "sum").tolist() == [1.0, 1.0]
    assert comm.allreduce_(torch.ones(2), "sum").tolist() == [1.0, 1.0]


def test_a_second_exchange_in_flight_is_refused():
    comm = local_network(ring(1))[0]
    c = Identity(CompressContext(dtype=torch.float64))
    x = torch.zeros(3, dtype=torch.float64)
    pending = comm.start_mix(c.encode(x))
    with pytest.raises(RuntimeError, match="one exchange in flight per node"):
        comm.start_mix(c.encode(x))
    comm.finish_mix(pending, c, out=x)
    comm.finish_mix(comm.start_mix(c.encode(x)), c, out=x)  # one at a time is fine
