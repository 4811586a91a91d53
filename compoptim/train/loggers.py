"""Optional extra loggers (config group ``logger``): the run's metric rows, also elsewhere.

Every run writes metrics.csv, metrics_nodes.csv and summary.json itself; a logger sends the
same rows (one per evaluation) to a tool as well. Each is built from the run directory
(rank 0 only); a factory's settings are its parameters after ``run_dir``. The tools are
optional extras, so a missing one is a one-line UserError naming its pip extra. None of
them touches the network: wandb runs offline and mlflow writes a file store, both inside
the run directory.
"""

from __future__ import annotations

import importlib
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import yaml

from compoptim.errors import UserError
from compoptim.registry import Registry

LOGGERS = Registry("logger", context=("run_dir",))

# MLflow accepts at most this many params in one log_batch call.
_MLFLOW_PARAMS_PER_BATCH = 100


class Logger(Protocol):
    def log(self, row: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


class NullLogger:
    def log(self, row: Mapping[str, Any]) -> None:
        del row

    def close(self) -> None:
        pass


class TensorBoardLogger:
    """Every numeric column of metrics.csv as a TensorBoard scalar, at the row's step
    (``tensorboard --logdir <run dir>/tensorboard``)."""

    def __init__(self, log_dir: Path) -> None:
        tensorboard = _require("tensorboard", "torch.utils.tensorboard", "tensorboard")
        self.writer = tensorboard.SummaryWriter(log_dir=str(log_dir))

    def log(self, row: Mapping[str, Any]) -> None:
        for key, value in _scalars(row).items():
            self.writer.add_scalar(key, value, global_step=int(row["step"]))
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    """An offline W&B run (``<dir>/wandb/offline-run-*``; upload it later with ``wandb sync``).

    The run opens at the first row rather than at build, so it carries the run's config
    (written just before the first evaluation) and a config mistake elsewhere starts no
    wandb service.
    """

    def __init__(self, run_dir: Path, project: str, run_name: str | None, dir: Path) -> None:
        self.wandb = _require("wandb", "wandb", "wandb")
        os.environ["WANDB_ERROR_REPORTING"] = "false"  # offline means no crash reports sent either
        self.run_dir, self.project, self.run_name, self.dir = Path(run_dir), project, run_name, dir
        self.run: Any = None

    def log(self, row: Mapping[str, Any]) -> None:
        if self.run is None:
            self.run = self._open()
        self.run.log(_scalars(row), step=int(row["step"]))

    def close(self) -> None:
        if self.run is not None:
            self.run.finish()

    def _open(self) -> Any:
        self.dir.mkdir(parents=True, exist_ok=True)
        # Only the metrics: no console capture, code, git state, system metadata or stats.
        settings = self.wandb.Settings(console="off", silent=True, save_code=False, disable_git=True,
                                       x_disable_stats=True, x_disable_meta=True)
        # create_new: a run the user opened in this process (a notebook's own) stays open.
        return self.wandb.init(mode="offline", dir=str(self.dir), project=self.project, name=self.run_name,
                               config=_run_config(self.run_dir), reinit="create_new", settings=settings)


class MLflowLogger:
    """An MLflow run: the flattened config as params, every numeric metric at its step
    (``mlflow ui --backend-store-uri <tracking uri>``).

    Talks to the tracking store through ``MlflowClient`` rather than mlflow's global active
    run, so a run of the caller's own (in a notebook) is left alone. Opens at the first row,
    when the run's config is on disk.
    """

    def __init__(self, run_dir: Path, experiment: str, run_name: str | None, tracking_uri: str) -> None:
        # Set before the import, which would otherwise start mlflow's usage telemetry.
        os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
        if tracking_uri.startswith("file:"):
            # mlflow 3 refuses its file store (in maintenance mode) unless asked for it.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        tracking = _require("mlflow", "mlflow.tracking", "mlflow (mlflow-skinny is enough)")
        self.entities = importlib.import_module("mlflow.entities")
        self.client = tracking.MlflowClient(tracking_uri=tracking_uri)
        self.run_dir, self.experiment, self.run_name = Path(run_dir), experiment, run_name
        self.run_id: str | None = None

    def log(self, row: Mapping[str, Any]) -> None:
        if self.run_id is None:
            self.run_id = self._open()
        now_ms, step = int(time.time() * 1000), int(row["step"])
        metrics = [self.entities.Metric(key, float(value), now_ms, step) for key, value in _scalars(row).items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def close(self) -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id)

    def _open(self) -> str:
        found = self.client.get_experiment_by_name(self.experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(self.experiment)
        run_id = self.client.create_run(experiment_id, run_name=self.run_name).info.run_id
        params = [self.entities.Param(key, value) for key, value in _flatten(_run_config(self.run_dir)).items()]
        for first in range(0, len(params), _MLFLOW_PARAMS_PER_BATCH):
            self.client.log_batch(run_id, params=params[first:first + _MLFLOW_PARAMS_PER_BATCH])
        return run_id


@LOGGERS.register("none")
def null_logger(run_dir: Path) -> NullLogger:
    """No extra logger: metrics.csv, metrics_nodes.csv and summary.json only."""
    del run_dir
    return NullLogger()


@LOGGERS.register("csv")
def csv_logger(run_dir: Path) -> NullLogger:
    """The run's own CSV files and nothing else: every run writes metrics.csv (one row per
    evaluation) and metrics_nodes.csv (one row per node and evaluation), so this is the
    same as ``none``, under the name users of other frameworks look for."""
    del run_dir
    return NullLogger()


@LOGGERS.register("tensorboard")
def tensorboard_logger(run_dir: Path, dir: str = "tensorboard") -> TensorBoardLogger:
    """Every metric as a TensorBoard scalar in ``<run dir>/<dir>``; needs
    ``pip install 'compoptim[tensorboard]'``."""
    return TensorBoardLogger(Path(run_dir) / dir)


@LOGGERS.register("wandb")
def wandb_logger(run_dir: Path, project: str = "compoptim", run_name: str | None = None,
                 dir: str = ".") -> WandbLogger:
    """Every metric at its step, and the config, in an offline W&B run under
    ``<run dir>/<dir>/wandb`` (never online: ``wandb sync`` uploads it); ``run_name`` null lets
    wandb choose one. Needs ``pip install 'compoptim[wandb]'``."""
    return WandbLogger(run_dir, project, run_name, Path(run_dir) / dir)


@LOGGERS.register("mlflow")
def mlflow_logger(run_dir: Path, experiment: str = "compoptim", run_name: str | None = None, dir: str = "mlruns",
                  tracking_uri: str | None = None) -> MLflowLogger:
    """Every metric at its step, and the flattened config as params, in an MLflow file store
    at ``<run dir>/<dir>`` (or the store at ``tracking_uri``, e.g. ``sqlite:///mlflow.db``
    with the full mlflow package); ``run_name`` null lets mlflow choose one. Needs
    ``pip install 'compoptim[mlflow]'``."""
    return MLflowLogger(run_dir, experiment, run_name, tracking_uri or (Path(run_dir) / dir).resolve().as_uri())


def build_logger(cfg: Mapping[str, Any], run_dir: Path) -> Logger:
    return LOGGERS.build(cfg, run_dir)


def _require(logger: str, module: str, package: str) -> ModuleType:
    """``module``, or the one-line error that names the pip extra installing it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"logger={logger} needs the {package} package: "
                        f"pip install 'compoptim[{logger}]' (or use logger=none)") from None


def _scalars(row: Mapping[str, Any]) -> dict[str, int | float]:
    """The row's finite numbers, without the step (the x axis): a NaN, like the training
    loss before the first step, is a missing point rather than a broken curve."""
    return {key: value for key, value in row.items()
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value)}


def _run_config(run_dir: Path) -> dict[str, Any]:
    """The run's resolved config (the Trainer writes it before the first evaluation);
    empty where the logger is used without one."""
    path = run_dir / "config.resolved.yaml"
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


def _flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"optimizer.lr": "0.1", ...}``: one string per leaf, as MLflow params are."""
    flat: dict[str, str] = {}
    for key, value in cfg.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat
