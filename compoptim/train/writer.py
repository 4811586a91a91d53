"""Run-directory files, written atomically (temp file + rename) so a crash never leaves a torn file."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import torch


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class RunWriter:
    """Writes ``config.resolved.yaml``, ``metrics.csv`` (one row per evaluation) and ``summary.json``."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._rows: list[dict[str, Any]] = []
        self._node_rows: list[dict[str, Any]] = []

    def write_config(self, yaml_text: str) -> None:
        atomic_write_text(self.run_dir / "config.resolved.yaml", yaml_text)

    @property
    def node_rows(self) -> list[dict[str, Any]]:
        return list(self._node_rows)

    def restore(self, rows: list[dict[str, Any]], node_rows: list[dict[str, Any]]) -> None:
        """Continue from a checkpoint: the metric files are rewritten to what it held (rows
        written after it, by the run that was then killed, are dropped)."""
        self._rows, self._node_rows = list(rows), list(node_rows)
        if self._rows:
            self._write_csv("metrics.csv", self._rows)
        if self._node_rows:
            self._write_csv("metrics_nodes.csv", self._node_rows)

    def add_metrics(self, row: dict[str, Any]) -> None:
        """One row per evaluation into metrics.csv."""
        self._rows.append(row)
        self._write_csv("metrics.csv", self._rows)

    def add_node_metrics(self, rows: list[dict[str, Any]]) -> None:
        """One row per node and evaluation into metrics_nodes.csv."""
        self._node_rows.extend(rows)
        self._write_csv("metrics_nodes.csv", self._node_rows)

    def _write_csv(self, name: str, rows: list[dict[str, Any]]) -> None:
        # The whole file is rewritten each time: evaluations are few, and a reader never
        # sees a half-written row.
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.run_dir / name, buf.getvalue())

    def write_json(self, name: str, obj: Any) -> None:
        atomic_write_text(self.run_dir / name, _to_json(obj))

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_text(self.run_dir / "summary.json", _to_json(summary))


def save_model(model: torch.nn.Module, path: Path) -> None:
    """The model's state dict (tensors only: loadable with ``torch.load(weights_only=True)``), atomically."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
    os.replace(tmp, path)


def mark_failed(run_dir: Path, error: BaseException, rank: int | None = None, status: str = "failed") -> None:
    """Set ``status`` (failed, diverged, preempted) with the error in summary.json, keeping
    what it already holds."""
    path = Path(run_dir) / "summary.json"
    try:
        summary = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        summary = {}
    where = f"rank {rank}: " if rank is not None else ""
    summary.update(status=status, error=f"{where}{type(error).__name__}: {error}")
    try:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, _to_json(summary))
    except OSError:
        pass  # an unwritable run dir must not hide the original error


def _to_json(obj: Any) -> str:
    """Strict JSON: NaN and infinities (a diverged run) become null."""
    return json.dumps(_finite(obj), indent=2, sort_keys=True, allow_nan=False) + "\n"


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj
