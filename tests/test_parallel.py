"""parallel=...: the plan's checks, the replicas' gossip graph, the padding of a short batch,
the stage meter, and what a pipeline refuses before it starts (no MPI here; the pipelined
runs themselves are in tests/mpi/test_pipeline_run_mpi.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import compoptim
from compoptim.errors import UserError
from compoptim.parallel.meter import StageMeter
from compoptim.parallel.placement import place_stages, replica_topology
from compoptim.parallel.plan import PARALLEL, SCHEDULES
from compoptim.parallel.stage import _pad, _padding
from compoptim.topology import ring, star, torus

FAST = ["model=mlp", "model.hidden=[32]", "trainer.epochs=1"]


@pytest.mark.parametrize("settings, message", [
    ({"schedule": "interleaved_1f1b"}, "unknown parallel.schedule 'interleaved_1f1b'; available: 1f1b, gpipe"),
    ({"cost": "flops"}, "unknown parallel.cost 'flops'; available: measured, parameters"),
    ({"stages": 0}, "parallel.stages must be >= 1; got 0"),
    ({"microbatches": 0}, "parallel.microbatches must be >= 1; got 0"),
    ({"stages": 2, "split": [1, 1, 1]}, "parallel.split=[1, 1, 1] gives 3 stages but parallel.stages=2"),
    ({"stiges": 2}, "parallel=pipeline has no setting 'stiges'"),
])
def test_a_bad_plan_is_one_line_naming_the_key(settings, message):
    with pytest.raises(UserError) as err:
        PARALLEL.build({"name": "pipeline", **settings})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_every_schedule_named_is_one_the_engine_has():
    from torch.distributed import pipelining

    assert {"gpipe": "ScheduleGPipe", "1f1b": "Schedule1F1B"}.keys() == set(SCHEDULES)
    assert all(hasattr(pipelining, cls) for cls in ("ScheduleGPipe", "Schedule1F1B"))


def test_the_batch_must_split_into_microbatches_and_batchnorm_needs_two_samples():
    plan = PARALLEL.build({"name": "pipeline", "stages": 2, "microbatches": 4})
    plan.check_batch(32, has_batch_norm=True)
    with pytest.raises(UserError, match=r"trainer\.batch_size=30 must be a multiple of parallel\.microbatches=4"):
        plan.check_batch(30, has_batch_norm=False)
    with pytest.raises(UserError, match="BatchNorm, which needs at least 2 samples per microbatch"):
        plan.check_batch(4, has_batch_norm=True)
    PARALLEL.build({"name": "data"}).check_batch(3, has_batch_norm=True)  # no stages, no microbatches


def test_the_replicas_of_a_ring_gossip_over_a_ring():
    topo = ring(8)
    placement = place_stages(topo, 2)
    assert placement.one_hop
    replicas = replica_topology(topo, placement)
    assert replicas.n == 4
    w = replicas.matrix()
    assert np.allclose(w.sum(0), 1) and np.allclose(w.sum(1), 1) and np.allclose(w, w.T)
    assert all(len(replicas.neighbors(i)) == 2 for i in range(4))  # a cycle of the 4 replicas
    assert replicas.spectral_gap > 0


@pytest.mark.parametrize("topology, stages", [(torus(16), 4), (star(6), 2), (ring(6), 3), (ring(4), 4)])
def test_the_replicas_graph_is_connected_and_doubly_stochastic(topology, stages):
    replicas = replica_topology(topology, place_stages(topology, stages))
    assert replicas.n == topology.n // stages
    w = replicas.matrix()
    assert np.allclose(w.sum(0), 1) and np.allclose(w.sum(1), 1)
    assert replicas.n == 1 or replicas.spectral_gap > 0


def test_one_stage_gossips_over_the_topology_itself():
    topo = ring(5)
    assert replica_topology(topo, place_stages(topo, 1)) is topo


@pytest.mark.parametrize("y", [torch.tensor([3, 1, 4]), torch.tensor([[1, 2], [3, 4], [5, 6]]),
                               torch.tensor([0.5, -1.0, 2.0])])
def test_a_short_batch_is_padded_with_samples_that_add_no_loss(y):
    x = torch.randn(len(y), 5)
    px, py = _pad(x, y, 5)
    assert px.shape == (5, 5) and len(py) == 5
    assert _padding(py).tolist() == [False, False, False, True, True]
    assert torch.equal(px[:3], x) and torch.equal(py[:3], y)
    assert _pad(x, y, 3)[0] is x  # a full batch is left alone


def test_the_meter_counts_a_stages_activations_and_its_busy_time():
    meter = StageMeter(stage=1, stages=3)  # a middle stage: input in, gradient back, output out, gradient in
    stage = meter.wrap(nn.Sequential(nn.Linear(6, 4), nn.Tanh()))
    x = torch.randn(8, 6, requires_grad=True)
    out = stage(x)
    out.sum().backward()
    meter.close()
    meter.count_step(microbatches=3)
    per_microbatch = (8 * 6 + 8 * 4) * 4
    assert meter.bytes_sent == meter.bytes_received == 3 * per_microbatch
    assert meter.busy_s > 0
    assert torch.allclose(x.grad, torch.autograd.grad(torch.tanh(x @ stage.inner[0].weight.T
                                                                  + stage.inner[0].bias).sum(), x)[0])


def test_the_first_and_last_stages_count_one_side():
    first, last = StageMeter(0, 2), StageMeter(1, 2)
    a, b = first.wrap(nn.Linear(3, 2)), last.wrap(nn.Linear(2, 5))
    h = a(torch.randn(4, 3))
    F.cross_entropy(b(h.detach().requires_grad_()), torch.zeros(4, dtype=torch.long)).backward()
    h.sum().backward()
    for m in (first, last):
        m.close()
        m.count_step(1)
    assert first.bytes_sent == 4 * 2 * 4 and last.bytes_sent == 4 * 2 * 4  # output out; its gradient back


def test_a_pipeline_on_the_local_backend_is_refused_in_one_line(tmp_path):
    with pytest.raises(UserError, match=r"parallel\.stages=2 runs the stages as MPI processes: start it with mpirun"):
        compoptim.run([*FAST, "parallel=pipeline", "backend.nodes=4"], run_dir=tmp_path / "run")


def test_one_stage_is_the_data_parallel_run_itself(tmp_path):
    data = compoptim.run([*FAST, "backend.nodes=3"], run_dir=tmp_path / "data")
    one = compoptim.run([*FAST, "backend.nodes=3", "parallel=pipeline", "parallel.stages=1"],
                        run_dir=tmp_path / "one")

    def table(run):
        return run.metrics[[c for c in run.metrics.columns if "time" not in c]]

    pd.testing.assert_frame_equal(table(one), table(data), check_exact=True)
    assert not (tmp_path / "one" / "parallel.json").exists()
