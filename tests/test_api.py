"""compoptim.run: a run from Python, with the CLI's config and messages, raising instead of exiting."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import compoptim
from compoptim.errors import UserError
from tests.conftest import replacing, tool

TINY = ["model=mlp", "model.hidden=[8]", "trainer.epochs=1", "backend.nodes=2"]


@pytest.fixture
def no_exit(monkeypatch):
    """compoptim.run must raise, never exit: an exit would end a notebook's kernel."""

    def refuse(code=None):
        raise AssertionError(f"sys.exit({code}) called")

    monkeypatch.setattr(sys, "exit", refuse)


def test_run_returns_the_metrics_of_a_tiny_run(in_tmp, no_exit):
    result = compoptim.run(TINY)
    assert result.run_dir.parent.parent == in_tmp / "outputs"  # outputs/<date>/<time>, as the CLI
    assert result.summary["status"] == "finished" and result.summary["n_nodes"] == 2
    assert {"epoch", "step", "samples", "wall_time_s", "train_loss", "test_loss", "test_acc", "consensus_distance",
            "bytes_sent_per_node"} <= set(result.metrics.columns)
    assert result.metrics["epoch"].tolist() == [0, 1]
    assert result.metrics["test_acc"].iloc[-1] == pytest.approx(result.summary["test_acc"])
    assert sorted(zip(result.nodes["epoch"], result.nodes["node"])) == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_logger_csv_writes_the_same_files_as_none(tmp_path, in_tmp):
    files = {}
    for logger in ("none", "csv"):
        result = compoptim.run([*TINY, f"logger={logger}"], run_dir=tmp_path / logger)
        assert result.run_dir == tmp_path / logger
        files[logger] = sorted(p.name for p in result.run_dir.iterdir())
    assert files["csv"] == files["none"] and "metrics.csv" in files["csv"]
    assert not (in_tmp / "outputs").exists()  # run_dir given: no stamp reserved


@pytest.mark.parametrize("override", ["optimizer=nope", "trainer.nope=1", "seed=1,2"])
def test_a_bad_override_is_the_cli_message_as_a_user_error(in_tmp, no_exit, override):
    with pytest.raises(UserError) as err:
        compoptim.run([*TINY, override])
    assert not (in_tmp / "outputs").exists()  # a refused command line leaves no trace, as in the CLI
    cli = subprocess.run([tool("compoptim-run"), "backend=local", *TINY, override], cwd=in_tmp, capture_output=True,
                         text=True, timeout=120, check=False)
    assert cli.returncode == 2
    assert cli.stderr.strip().splitlines()[-1] == f"compoptim-run: error: {err.value}"


@pytest.mark.slow
def test_a_bad_value_fails_the_run_and_raises_where_the_cli_exits_2(tmp_path, no_exit):
    no_nodes = replacing(TINY, "backend.nodes=0")
    with pytest.raises(UserError, match=r"^backend.nodes must be >= 1") as err:
        compoptim.run(no_nodes, run_dir=tmp_path / "api")
    assert json.loads((tmp_path / "api" / "summary.json").read_text())["status"] == "failed"
    cli = subprocess.run([tool("compoptim-run"), "backend=local", *no_nodes, "hydra.run.dir=cli"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert cli.returncode == 2
    assert cli.stderr.strip().splitlines()[-1] == f"compoptim-run: error: {err.value}"
    assert json.loads((tmp_path / "cli" / "summary.json").read_text())["status"] == "failed"


def test_an_mpi_backend_is_refused(in_tmp, no_exit):
    with pytest.raises(UserError, match="use compoptim-run under mpirun"):
        compoptim.run(["model=mlp", "backend=mpi"])
    assert not (in_tmp / "outputs").exists()


def test_import_compoptim_loads_neither_torch_nor_mpi():
    code = "import sys, compoptim; compoptim.__version__; print(sorted({'torch', 'mpi4py'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
