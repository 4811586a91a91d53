"""Optional extra loggers (config group ``logger``): the run's metric rows, also elsewhere."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compoptim.errors import UserError

LOGGERS = ("none", "tensorboard")


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


def build_logger(cfg: Mapping[str, Any], run_dir: Path) -> NullLogger | TensorBoardLogger:
    name = cfg["name"]
    if name == "none":
        return NullLogger()
    if name == "tensorboard":
        return TensorBoardLogger(Path(run_dir) / str(cfg.get("dir", "tensorboard")))
    raise UserError(f"unknown logger '{name}'; available: {', '.join(LOGGERS)}")
