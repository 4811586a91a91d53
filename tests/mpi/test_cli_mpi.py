"""compoptim-run end to end under real `mpirun`, each with a timeout so a hang fails the test."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compoptim.optim import ALGORITHMS
from tests.conftest import mpi_env, replacing, tool

pytestmark = pytest.mark.mpi

TIMEOUT = 180
FAST = ["trainer.epochs=1", "model=mlp", "model.hidden=[32]"]
NUMEL_MLP32 = 784 * 32 + 32 + 32 * 10 + 10

OPTIMIZER_NAMES = ", ".join(sorted(ALGORITHMS))


def launch(np_: int | None, args: list[str], cwd: Path,
           program: list[str] | None = None) -> subprocess.CompletedProcess:
    """Run compoptim-run (or ``program``) under ``mpirun -np np_`` (no mpirun if np_ is None)."""
    program = program or [tool("compoptim-run")]
    cmd = ([tool("mpirun"), "-np", str(np_)] if np_ else []) + program + args
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, env=mpi_env(), check=False)


def run_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.rglob("summary.json"))


@pytest.mark.parametrize("np_", [1, 2, 3, 5])
def test_mpirun_trains_and_writes_one_run_dir(tmp_path, np_):
    result = launch(np_, ["trainer.epochs=1"], tmp_path)
    assert result.returncode == 0, result.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    assert [p.parent for p in tmp_path.rglob(".hydra")] == [run]
    assert len(list(tmp_path.rglob("*.log"))) == 1
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["n_nodes"] == np_
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"epoch", "step", "wall_time_s", "train_loss", "test_loss", "test_acc", "local_test_acc_mean",
            "consensus_distance", "bytes_sent_per_node"} <= set(rows[0])
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert result.stdout.count("epoch   1/1") == 1  # progress printed by rank 0 only
    expected_neighbours = {1: 0, 2: 1, 3: 2, 5: 2}[np_]
    per_step = expected_neighbours * 61706 * 4
    assert float(rows[-1]["bytes_sent_per_node"]) == per_step * int(rows[-1]["step"])


def test_single_process_without_mpirun(tmp_path):
    result = launch(None, FAST, tmp_path)
    assert result.returncode == 0, result.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    assert json.loads((run / "summary.json").read_text())["n_nodes"] == 1


def test_same_seed_gives_identical_metrics_under_mpi(tmp_path):
    tables = []
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        assert launch(2, [*FAST, "seed=5"], tmp_path / sub).returncode == 0
        (run,) = run_dirs(tmp_path / sub)
        with open(run / "metrics.csv") as f:
            tables.append([{k: v for k, v in r.items() if "time" not in k} for r in csv.DictReader(f)])
    assert tables[0] == tables[1]


def test_threads_default_to_cores_per_rank_and_can_be_set(tmp_path):
    import os

    assert launch(2, FAST, tmp_path).returncode == 0
    assert launch(2, [*FAST, "trainer.threads=1", "hydra.run.dir=fixed"], tmp_path).returncode == 0
    auto = json.loads(next((tmp_path / "outputs").rglob("summary.json")).read_text())
    fixed = json.loads((tmp_path / "fixed" / "summary.json").read_text())
    assert auto["torch_threads"] == max(1, len(os.sched_getaffinity(0)) // 2)
    assert fixed["torch_threads"] == 1


def test_bad_option_is_one_clear_line(tmp_path):
    result = launch(2, ["optimizer=adamm"], tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"compoptim-run: error: unknown optimizer 'adamm'; available: {OPTIMIZER_NAMES}; "
                     f"did you mean 'adam'?"]
    assert not (tmp_path / "outputs").exists()


def test_bad_value_fails_once_before_training(tmp_path):
    result = launch(3, ["optimizer.lr=-1"], tmp_path)
    assert result.returncode != 0
    assert result.stderr.count("optimizer.lr must be > 0; got -1") == 1
    assert "Traceback" not in result.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    assert json.loads((run / "summary.json").read_text())["status"] == "failed"


FAULT_SCRIPT = """
import sys
from mpi4py import MPI
from compoptim.optim.decentralized import Decentralized as RuleOptimizer

_step = RuleOptimizer.step

def step(self, closure=None):
    if MPI.COMM_WORLD.Get_rank() == {rank} and self.t == 3:
        raise RuntimeError("injected failure")
    _step(self, closure)

RuleOptimizer.step = step
from compoptim.cli.run import main
main()
"""


@pytest.mark.parametrize("failing_rank", [0, 1])
def test_exception_on_one_rank_ends_the_job_promptly(tmp_path, failing_rank):
    script = tmp_path / "fault.py"
    script.write_text(FAULT_SCRIPT.format(rank=failing_rank))
    start = time.monotonic()
    result = launch(3, replacing(FAST, "trainer.epochs=50"), tmp_path, program=[sys.executable, str(script)])
    elapsed = time.monotonic() - start
    assert result.returncode != 0
    assert elapsed < 60
    assert f"compoptim-run: error: rank {failing_rank} of 3: RuntimeError: injected failure" in result.stderr
    assert "epoch  50/50" not in result.stdout
    (run,) = run_dirs(tmp_path / "outputs")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert summary["error"] == f"rank {failing_rank}: RuntimeError: injected failure"


def test_multirun_under_mpirun_gives_one_dir_per_job(tmp_path):
    result = launch(2, ["-m", "seed=0,1", *FAST], tmp_path)
    assert result.returncode == 0, result.stderr
    runs = run_dirs(tmp_path / "multirun")
    assert [r.name for r in runs] == ["0", "1"]
    assert sorted(p.parent.name for p in tmp_path.rglob(".hydra")) == ["0", "1"]
    assert [json.loads((r / "summary.json").read_text())["n_nodes"] for r in runs] == [2, 2]
    seeds = [(r / "config.resolved.yaml").read_text().splitlines()[0] for r in runs]
    assert seeds == ["seed: 0", "seed: 1"]


@pytest.mark.parametrize("np_", [2, 4, 5, 7])
def test_mpi_exchange_equals_w_times_x_and_the_local_backend(tmp_path, np_):
    script = Path(__file__).with_name("mix_check.py")
    result = launch(np_, [], tmp_path, program=[sys.executable, str(script)])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_error_inside_hydra_on_rank_0_only_aborts_the_job(tmp_path):
    # The log file handler is configured on rank 0 only; a job name with a slash breaks it.
    start = time.monotonic()
    result = launch(2, [*FAST, "hydra.job.name=a/b"], tmp_path)
    assert result.returncode != 0
    assert time.monotonic() - start < 60
    assert "Unable to configure handler 'file'" in result.stderr


def test_launcher_of_another_mpi_library_is_refused(tmp_path):
    env = {**mpi_env(), "OMPI_COMM_WORLD_SIZE": "3"}
    result = subprocess.run([tool("compoptim-run"), *FAST], cwd=tmp_path, capture_output=True, text=True,
                            timeout=TIMEOUT, env=env, check=False)
    assert result.returncode != 0
    assert "started as one of 3 processes (OMPI_COMM_WORLD_SIZE) but MPI sees only 1" in result.stderr
    assert not (tmp_path / "outputs").exists()


def test_srun_without_a_pmi_is_refused(tmp_path):
    """srun's tasks with no PMI MPI reads (srun without --mpi where MpiDefault=none): one line,
    naming the fix, instead of each task training alone (tests/slurm/ does it under srun)."""
    env = {**mpi_env(), "SLURM_STEP_NUM_TASKS": "4"}
    result = subprocess.run([tool("compoptim-run"), *FAST], cwd=tmp_path, capture_output=True, text=True,
                            timeout=TIMEOUT, env=env, check=False)
    assert result.returncode != 0
    (line,) = result.stderr.splitlines()
    assert line.startswith("compoptim-run: error: started by srun as one of 4 tasks but MPI sees only 1: srun gave no "
                           "PMI that ") and "; use srun --mpi=pmi2 (" in line, result.stderr
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("np_, topology, degrees", [(6, "torus", [3]), (5, "one_peer_exponential", None),
                                                   (4, "star", [3, 1, 1, 1]), (3, "none", [0]),
                                                   (4, "random_matching", [1, 1, 1, 1])])
def test_named_topologies_from_the_command_line(tmp_path, np_, topology, degrees):
    result = launch(np_, [*FAST, f"topology={topology}"], tmp_path)
    assert result.returncode == 0, result.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["topology"]["name"] == topology and summary["n_nodes"] == np_
    assert f"topology={topology} (spectral gap {summary['spectral_gap']:.4f}" in result.stdout
    drawn = json.loads((run / "topology.json").read_text())
    assert len(drawn["rounds"]) == summary["topology"]["period"]
    if degrees is not None:  # bytes = payload x neighbours x steps, mean over the nodes
        payload = (784 * 32 + 32 + 32 * 10 + 10) * 4
        expected = payload * summary["steps"] * sum(degrees) / len(degrees)
        assert summary["bytes_sent_per_node"] == pytest.approx(expected)


def _metrics_without_times(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if "time" not in k} for row in csv.DictReader(f)]


def test_local_backend_is_bit_identical_to_mpi(tmp_path):
    args = ["trainer.epochs=2", "trainer.threads=1", "topology=one_peer_exponential"]
    mpi = launch(3, [*args, "hydra.run.dir=mpi"], tmp_path)
    # MPI overlaps x's exchange with the backward pass (the default), the local run does not:
    # both paths give the same bits.
    local = launch(None, [*args, "backend=local", "backend.nodes=3", "optimizer.overlap=false",
                          "hydra.run.dir=local"], tmp_path)
    assert mpi.returncode == 0, mpi.stderr
    assert local.returncode == 0, local.stderr
    rows = _metrics_without_times(tmp_path / "mpi")
    assert len(rows) == 3 and float(rows[-1]["bytes_sent_per_node"]) > 0
    assert rows == _metrics_without_times(tmp_path / "local")
    assert json.loads((tmp_path / "local" / "summary.json").read_text())["backend"] == "local"


def test_simulated_time_under_mpi_is_the_local_backends(tmp_path):
    """network=ethernet_10g with a configured compute: the same simulated clocks from mpirun -np 3
    and from backend=local (the model runs on the ranks' own round logs, gathered to rank 0)."""
    args = ["trainer.epochs=2", "model=mlp", "model.hidden=[32]", "network=ethernet_10g",
            "network.step_compute_s=0.002",
            "network.stragglers=[1]", "network.straggler_factor=3", "optimizer.overlap=false"]
    mpi = launch(3, [*args, "hydra.run.dir=mpi"], tmp_path)
    local = launch(None, [*args, "backend=local", "backend.nodes=3", "hydra.run.dir=local"], tmp_path)
    assert mpi.returncode == 0, mpi.stderr
    assert local.returncode == 0, local.stderr

    def sim_times(run, name):
        with open(tmp_path / run / name) as f:
            return [float(r["sim_time_s"]) for r in csv.DictReader(f)]

    for name in ("metrics.csv", "metrics_nodes.csv"):
        assert sim_times("mpi", name) == pytest.approx(sim_times("local", name), rel=1e-12)
    assert sim_times("mpi", "metrics.csv")[-1] > 0


def test_local_backend_under_mpirun_is_refused(tmp_path):
    result = launch(2, [*FAST, "backend=local"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("backend=local runs all nodes in one process; start it without mpirun") == 1


@pytest.mark.parametrize("compressor, payload", [
    ("sign", 4 + math.ceil(NUMEL_MLP32 / 8)),  # 3186 bytes: rows of the receive buffer must stay aligned
    ("qsgd", 4 * math.ceil(NUMEL_MLP32 / 512) + math.ceil(NUMEL_MLP32 * 4 / 8)),
    ("topk", math.ceil(0.01 * NUMEL_MLP32) * 6),
    ("randomk", 8 + 4 * math.ceil(0.01 * NUMEL_MLP32)),
])
def test_compressed_gossip_under_mpi_counts_the_wire_bytes(tmp_path, compressor, payload):
    args = [*FAST, "optimizer=sgd", f"compressor={compressor}", "trainer.threads=1"]
    mpi = launch(3, [*args, "hydra.run.dir=mpi"], tmp_path)
    assert mpi.returncode == 0, mpi.stderr
    summary = json.loads((tmp_path / "mpi" / "summary.json").read_text())
    assert summary["bytes_sent_per_node"] == summary["steps"] * 2 * payload
    local = launch(None, [*args, "backend=local", "backend.nodes=3", "hydra.run.dir=local"], tmp_path)
    assert local.returncode == 0, local.stderr
    assert _metrics_without_times(tmp_path / "mpi") == _metrics_without_times(tmp_path / "local")


def test_overlap_under_mpi_gives_the_same_metrics(tmp_path):
    args = [*replacing(FAST, "trainer.epochs=2"), "trainer.threads=1"]
    plain = launch(3, [*args, "optimizer.overlap=false", "hydra.run.dir=plain"], tmp_path)
    overlapped = launch(3, [*args, "optimizer.overlap=true", "hydra.run.dir=overlap"], tmp_path)
    assert plain.returncode == 0 and overlapped.returncode == 0, overlapped.stderr
    assert _metrics_without_times(tmp_path / "plain") == _metrics_without_times(tmp_path / "overlap")


def test_shared_memory_rounds_give_the_same_metrics_and_a_time_varying_graph_is_refused(tmp_path):
    # model.hidden=[512]: 38,410 floats (154 KB), over SHARED_MIN_BYTES, so x goes through the windows.
    args = [*replacing(FAST, "model.hidden=[512]"), "trainer.threads=1", "optimizer.overlap=false"]
    plain = launch(3, [*args, "hydra.run.dir=plain"], tmp_path)
    shared = launch(3, [*args, "backend.shared_memory=true", "hydra.run.dir=shared"], tmp_path)
    assert plain.returncode == 0 and shared.returncode == 0, shared.stderr
    assert _metrics_without_times(tmp_path / "plain") == _metrics_without_times(tmp_path / "shared")
    refused = launch(3, [*FAST, "backend.shared_memory=true", "topology=one_peer_exponential",
                         "hydra.run.dir=refused"], tmp_path)
    assert refused.returncode != 0
    assert "backend.shared_memory=true needs a static undirected topology" in refused.stderr
