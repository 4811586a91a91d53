"""Optional extra loggers (config group ``logger``): the run's metric rows, also elsewhere.

Each is built from the run directory (rank 0 only); a factory's settings are its
parameters after ``run_dir``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compoptim.errors import UserError
from compoptim.registry import Registry

LOGGERS = Registry("logger", context=("run_dir",))


class NullLogger:
    def log(self, row: Mapping[str, Any]) -> None:
        del row

    def close(self) -> None:
        pass


class TensorBoardLogger:
    """Every numeric column of metrics.csv as a TensorBoard scalar, at the row's step
    (``tensorboard --logdir <run dir>/tensorboard``). Needs the ``tensorboard`` package
    (``pip install 'compoptim[tensorboard]'``)."""

    def __init__(self, log_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError("logger=tensorboard needs the tensorboard package: "
                            "pip install 'compoptim[tensorboard]' (or use logger=none)") from None
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def log(self, row: Mapping[str, Any]) -> None:
        step = int(row["step"])
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(key, value, global_step=step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


@LOGGERS.register("none")
def null_logger(run_dir: Path) -> NullLogger:
    """No extra logger: metrics.csv, metrics_nodes.csv and summary.json only."""
    del run_dir
    return NullLogger()


@LOGGERS.register("tensorboard")
def tensorboard_logger(run_dir: Path, dir: str = "tensorboard") -> TensorBoardLogger:
    """Every metric as a TensorBoard scalar in ``<run dir>/<dir>`` (rank 0); needs
    ``pip install "compoptim[tensorboard]"``."""
    return TensorBoardLogger(Path(run_dir) / dir)


def build_logger(cfg: Mapping[str, Any], run_dir: Path) -> NullLogger | TensorBoardLogger:
    return LOGGERS.build(cfg, run_dir)
