"""Every logger writes the run's metric rows where it says, offline; a missing package is one line."""

from __future__ import annotations

import math
import sys

import pytest
import yaml

from compoptim.errors import UserError
from compoptim.registry import to_plain
from compoptim.train.loggers import LOGGERS, build_logger
from tests.conftest import compose_config

# Two evaluations as the Trainer logs them: the first has no training loss yet (NaN).
ROWS = [
    {"epoch": 0, "step": 0, "samples": 0, "train_loss": math.nan, "test_acc": 0.1, "consensus_distance": 0.0},
    {"epoch": 1, "step": 10, "samples": 640, "train_loss": 0.5, "test_acc": 0.8, "consensus_distance": 1e-3},
]
CONFIG = {"optimizer": {"name": "dsgd", "lr": 0.1}, "model": {"name": "mlp", "hidden": [8]}, "seed": 0}

# Each logger's files in the run directory, and the pip extra its package comes from
# (the module whose absence the error reports).
LOGGER_FILES = {
    "none": ([], None),
    "csv": ([], None),
    "tensorboard": (["tensorboard"], "torch.utils.tensorboard"),
    "wandb": (["wandb"], "wandb"),
    "mlflow": (["mlruns"], "mlflow.tracking"),
}


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    """A run directory holding its config, as the Trainer leaves it before the first row;
    the tools' own settings and caches are kept inside the test's folder."""
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "home" / var.lower()))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    for var in ("WANDB_ERROR_REPORTING", "MLFLOW_DISABLE_TELEMETRY", "MLFLOW_ALLOW_FILE_STORE"):
        monkeypatch.setenv(var, "true")  # restored afterwards, whatever the logger sets
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.resolved.yaml").write_text(yaml.safe_dump(CONFIG))
    return run


def log_rows(name: str, run, **settings) -> None:
    """Log ROWS as the Trainer does; the logger must write nothing beyond its own folder."""
    logger = build_logger({"name": name, **settings}, run)
    for row in ROWS:
        logger.log(row)
    logger.close()
    assert sorted(p.name for p in run.iterdir()) == sorted(["config.resolved.yaml", *LOGGER_FILES[name][0]])


def test_every_logger_is_in_the_table():
    assert sorted(LOGGERS) == sorted(LOGGER_FILES)


@pytest.mark.parametrize("name", sorted(LOGGER_FILES))
def test_every_logger_is_a_config_option(name):
    assert to_plain(compose_config(f"logger={name}").logger)["name"] == name


@pytest.mark.parametrize("name", ["none", "csv"])
def test_none_and_csv_add_nothing_to_the_run_files(run_dir, name):
    log_rows(name, run_dir)


@pytest.mark.parametrize("name", [n for n, (_, module) in LOGGER_FILES.items() if module])
def test_a_missing_package_is_one_line_naming_the_extra(run_dir, monkeypatch, name):
    monkeypatch.setitem(sys.modules, LOGGER_FILES[name][1], None)  # import fails as if not installed
    with pytest.raises(UserError, match=rf"^logger={name} needs .*: pip install 'compoptim\[{name}\]'") as err:
        build_logger({"name": name}, run_dir)
    assert "\n" not in str(err.value)


def test_tensorboard_writes_every_finite_metric_at_its_step(run_dir):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log_rows("tensorboard", run_dir)
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    assert [(s.step, s.value) for s in events.Scalars("test_acc")] == [(0, pytest.approx(0.1)),
                                                                      (10, pytest.approx(0.8))]
    assert [s.step for s in events.Scalars("train_loss")] == [10]  # the NaN is a missing point
    assert "step" not in events.Tags()["scalars"]


def test_wandb_writes_an_offline_run_inside_the_run_dir(run_dir):
    wandb = pytest.importorskip("wandb")
    log_rows("wandb", run_dir, project="tests", run_name="tiny")
    # finish() leaves closing the file to wandb's service process; teardown waits for it.
    wandb.teardown()
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    (records,) = offline.glob("run-*.wandb")
    data = records.read_bytes()
    # The transaction log is wandb's own binary format: its history and config carry the names.
    for key in ("test_acc", "consensus_distance", "train_loss", "optimizer", "dsgd", "tests", "tiny"):
        assert key.encode() in data, key


def test_mlflow_writes_params_and_metrics_to_a_file_store(run_dir):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    log_rows("mlflow", run_dir, experiment="tests", run_name="tiny")
    client = MlflowClient(tracking_uri=(run_dir / "mlruns").as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("tests").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "tiny"
    assert run.data.params == {"optimizer.name": "dsgd", "optimizer.lr": "0.1", "model.name": "mlp",
                               "model.hidden": "[8]", "seed": "0"}
    history = {key: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]
               for key in ("test_acc", "train_loss", "epoch")}
    assert history == {"test_acc": [(0, 0.1), (10, 0.8)], "train_loss": [(10, 0.5)], "epoch": [(0, 0.0), (10, 1.0)]}
    assert "step" not in run.data.metrics
