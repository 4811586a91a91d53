"""The network time model: its recursion against a brute-force oracle, and the simulated time
of whole runs against the closed forms of a ring D-PSGD step, a CHOCO + top-k step, an
all-reduce step and a straggler on a synchronous ring."""

import csv
import itertools
import math
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch

from compoptim.comm import NETWORKS, SimulatedNetwork, run_local
from compoptim.comm.network import ALLREDUCE, GOSSIP
from compoptim.compress import CompressContext, build_compressor
from compoptim.errors import UserError
from compoptim.topology import erdos_renyi, one_peer_exponential, ring
from compoptim.train import Trainer
from tests.conftest import compose_config

C = 0.004  # configured compute per step (s)


def run(tmp_path, n, *overrides, topology=None):
    cfg = compose_config("trainer.epochs=2", "model=mlp", "model.hidden=[16]", "trainer.batch_size=64",
                         f"network.step_compute_s={C}", *overrides)
    summaries = run_local(topology or ring(n),
                          lambda comm: Trainer(cfg, comm, tmp_path, torch.device("cpu"), log=lambda m: None).fit())
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    with open(tmp_path / "metrics_nodes.csv") as f:
        nodes = [r for r in csv.DictReader(f) if r["epoch"] == rows[-1]["epoch"]]
    return summaries[0], rows, nodes


def model_of(name, **settings):
    return NETWORKS.build({"name": name, **settings})


def test_presets_state_their_links():
    ten = model_of("ethernet_10g")
    assert (ten.latency_s, ten.bytes_per_s) == (20e-6, 1.25e9)
    assert ten.message_s(1.25e6) == pytest.approx(20e-6 + 1e-3)
    assert model_of("ideal").message_s(1e12) == 0.0
    assert model_of("wan_100m").message_s(0) == 0.02
    assert model_of("custom", latency_s=5e-6, bandwidth_gbps=25.0).message_s(25e9 / 8) == pytest.approx(1 + 5e-6)
    # ring all-reduce: 2(n-1) steps of latency + b/(n BW)
    assert ten.allreduce_s(8e6, 4) == pytest.approx(6 * (20e-6 + 2e6 / 1.25e9))
    assert ten.allreduce_s(8e6, 1) == 0.0


@pytest.mark.parametrize("setting, message", [
    ("network.latency_s=-1", r"network.latency_s must be >= 0; got -1"),
    ("network.bandwidth_gbps=0", r"network.bandwidth_gbps must be > 0; got 0"),
    ("network.straggler_factor=0", r"network.straggler_factor must be > 0; got 0"),
    ("network.step_compute_s=-0.1", r"network.step_compute_s must be >= 0; got -0.1"),
    ("network.stragglers=[5]", r"network.stragglers names node\(s\) \[5\] of a run with 3 nodes; allowed: 0 to 2"),
    ("trainer.target_acc=1.5", r"trainer.target_acc must be in \(0, 1\]"),
])
def test_bad_network_settings_are_one_line(tmp_path, setting, message):
    cfg = compose_config("network=ethernet_10g", setting)
    with pytest.raises(UserError, match=message):
        run_local(ring(3), lambda comm: Trainer(cfg, comm, tmp_path, torch.device("cpu"), log=lambda m: None))


def brute_force(model, topology, logs, factors):
    """The clocks by the model's definition, written independently: each round, every node's
    end is the latest of its own work and each in-neighbour's message arrival; the longest
    path through the rounds, computed node by node with plain floats."""
    n = topology.n
    rounds = (len(logs[0]) - 1) // 5
    e = [0.0] * n
    for r in range(rounds):
        row = [logs[i][5 * r : 5 * r + 5] for i in range(n)]
        posted = [e[i] + row[i][0] * factors[i] for i in range(n)]
        done = [posted[i] + row[i][1] * factors[i] for i in range(n)]
        if row[0][3] == ALLREDUCE:
            t = max(done) + model.allreduce_s(row[0][2], n)
            e = [t] * n
            continue
        step = int(row[0][4])
        e = [max([done[i]] + [posted[j] + model.latency_s + row[j][2] / model.bytes_per_s
                              for j in topology.neighbors(i, step)]) for i in range(n)]
    return [e[i] + logs[i][-1] * factors[i] for i in range(n)]


@pytest.mark.parametrize("topology", [ring(7), erdos_renyi(9, 0.4, seed=2), one_peer_exponential(8)])
def test_the_recursion_is_the_models_definition(topology):
    rng = np.random.default_rng(0)
    n, rounds = topology.n, 23
    model = model_of("ethernet_1g", stragglers=[1], straggler_factor=3.0)
    logs = []
    for _ in range(n):
        rows = []
        for r in range(rounds):
            kind = ALLREDUCE if r % 7 == 6 else GOSSIP
            rows += [rng.exponential(1e-3), 0.0 if kind == ALLREDUCE else rng.exponential(1e-4),
                     float(rng.integers(100, 10**6)) if kind == GOSSIP else 4e5, kind, float(r)]
        logs.append(np.array([*rows, rng.exponential(1e-3)]))
    sim = SimulatedNetwork(model, topology)
    first, second = [log[: 5 * 11] for log in logs], [log[5 * 11 :] for log in logs]
    # two resolutions in a row (an epoch's end in between) give what one over all rounds gives
    sim.advance([np.concatenate([f, [0.0]]) for f in first])
    got = sim.advance(second)
    factors = [model.compute_factor(i) for i in range(n)]
    np.testing.assert_allclose(got, brute_force(model, topology, logs, factors), rtol=1e-12)
    assert sim.time_s == max(got)


def test_nodes_that_log_different_rounds_are_an_error():
    sim = SimulatedNetwork(model_of("ideal"), ring(3))
    with pytest.raises(RuntimeError, match="different numbers of rounds"):
        sim.advance([np.zeros(6), np.zeros(6), np.zeros(11)])


def steps_of(rows):
    return [int(r["step"]) for r in rows]


@pytest.mark.parametrize("overlap", [False, True])
def test_a_ring_dpsgd_step_is_compute_plus_one_message(tmp_path, overlap):
    """No overlap: c + latency + 4d/BW per step. Overlapped (x_t travels during the backward
    pass): max(c, latency + 4d/BW)."""
    summary, rows, _ = run(tmp_path, 4, "network=ethernet_1g", "optimizer=dsgd", f"optimizer.overlap={overlap}")
    message = NETWORKS.build({"name": "ethernet_1g"}).message_s(4 * summary["num_params"])
    per_step = max(C, message) if overlap else C + message
    for row in rows:
        assert float(row["sim_time_s"]) == pytest.approx(int(row["step"]) * per_step, rel=1e-9)
    assert float(rows[0]["sim_time_s"]) == 0.0 and summary["sim_time_s"] == float(rows[-1]["sim_time_s"])


def test_a_choco_topk_step_sends_the_payload_the_compressor_states(tmp_path):
    summary, rows, _ = run(tmp_path, 5, "network=wan_100m", "optimizer=choco_sgd", "compressor=topk",
                           "compressor.ratio=0.05")
    nbytes = build_compressor({"name": "topk", "ratio": 0.05},
                              CompressContext(layout=[(summary["num_params"],)])).payload_nbytes(summary["num_params"])
    per_step = C + NETWORKS.build({"name": "wan_100m"}).message_s(nbytes)
    assert nbytes < 4 * summary["num_params"] / 5
    for row in rows:
        assert float(row["sim_time_s"]) == pytest.approx(int(row["step"]) * per_step, rel=1e-9)


def test_an_allreduce_step_costs_the_ring_allreduce(tmp_path):
    n = 4
    summary, rows, _ = run(tmp_path, n, "network=ethernet_10g", "optimizer=allreduce_sgd")
    per_step = C + NETWORKS.build({"name": "ethernet_10g"}).allreduce_s(4 * summary["num_params"], n)
    for row in rows:
        assert float(row["sim_time_s"]) == pytest.approx(int(row["step"]) * per_step, rel=1e-9)


def test_a_straggler_slows_a_synchronous_ring_as_the_model_says(tmp_path):
    """Node 0 computes k times slower. On a ring each round waits for the neighbours, so after
    t steps node i at distance h from it is at (t - h + 1) k c + (h - 1) c + h delta (its
    slowest path: waiting at the straggler, then h hops), once that exceeds t (c + delta);
    the run ends when the straggler's neighbours do: t k c + delta."""
    n, k = 8, 5.0
    summary, rows, nodes = run(tmp_path / "slow", n, "network=ethernet_1g", "optimizer=dsgd", "optimizer.overlap=false",
                               "network.stragglers=[0]", f"network.straggler_factor={k}")
    delta = NETWORKS.build({"name": "ethernet_1g"}).message_s(4 * summary["num_params"])
    t = int(rows[-1]["step"])
    assert (k - 1) * C > delta and t >= n // 2
    for node in nodes:
        i = int(node["node"])
        h = min(i, n - i)
        expected = t * k * C if h == 0 else (t - h + 1) * k * C + (h - 1) * C + h * delta
        assert float(node["sim_time_s"]) == pytest.approx(max(expected, t * (C + delta)), rel=1e-9)
    assert summary["sim_time_s"] == pytest.approx(t * k * C + delta, rel=1e-9)
    _, even, _ = run(tmp_path / "even", n, "network=ethernet_1g", "optimizer=dsgd", "optimizer.overlap=false")
    assert float(even[-1]["sim_time_s"]) == pytest.approx(t * (C + delta), rel=1e-9)


def test_measured_compute_and_the_time_to_target(tmp_path):
    """Without step_compute_s the clocks take each node's measured busy time: positive, at
    most the training time plus the messages; summary.json names the first evaluation that
    reached the target, with its simulated time."""
    summary, rows, _ = run(tmp_path, 3, "network=ethernet_10g", "network.step_compute_s=null", "trainer.epochs=3",
                           "trainer.target_acc=0.3")
    sims = [float(r["sim_time_s"]) for r in rows]
    assert sims[0] == 0.0 and all(b > a for a, b in itertools.pairwise(sims))
    message = NETWORKS.build({"name": "ethernet_10g"}).message_s(4 * summary["num_params"])
    assert sims[-1] <= float(rows[-1]["train_time_s"]) * 1.5 + int(rows[-1]["step"]) * message
    hit = summary["time_to_target"]
    first = next(r for r in rows if float(r["test_acc"]) >= 0.3)
    assert hit["epoch"] == int(first["epoch"]) and hit["sim_time_s"] == float(first["sim_time_s"])
    assert math.isclose(hit["bytes_sent_per_node"], float(first["bytes_sent_per_node"]))
    never, _, _ = run(tmp_path / "never", 2, "trainer.epochs=1", "trainer.target_acc=1.0")
    assert never["time_to_target"] is None


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_crossover_script_checks_its_closed_form_and_draws_its_figure(tmp_path):
    doc = tmp_path / "performance.md"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "network_crossover.py"), "--smoke", "--doc", str(doc),
                           "--figures", str(tmp_path), "--runs", str(tmp_path / "runs")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    text = doc.read_text()
    assert "<!-- begin network_crossover -->" in text and "scripts/network_crossover.py --smoke" in text
    assert text.count("| exact (D-PSGD) | 246,824 |") == 1  # LeNet-5's 61,706 fp32 parameters
    pixels = matplotlib.image.imread(tmp_path / "network_crossover.png")
    assert pixels.shape[1] > 1000 and pixels.std() > 0.01


@pytest.mark.slow
def test_the_node_scaling_script_runs(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_nodes.py"), "--smoke"], cwd=ROOT / "scripts",
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 4 ") or line.startswith("| 16 ")]
    assert len(rows) == 4 and all(float(r.split("|")[7]) > 0 for r in rows)
