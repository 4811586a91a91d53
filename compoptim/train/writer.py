"""Run-directory files, written atomically (temp file + rename) so a crash never leaves a torn file."""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from compoptim.errors import UserError
from compoptim.train.record import timestamp


def atomic_write_text(path: Path, text: str) -> None:
    """``path`` holds ``text`` or, if the write fails (a full disk), what it held before: the
    temporary file is removed and the failure is a one-line ``UserError`` naming the file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with writing(path, tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)


@contextlib.contextmanager
def writing(path: Path, tmp: Path) -> Iterator[None]:
    """Around a write of ``path`` through ``tmp``: on an OSError the temporary file goes and
    the error is one line (``no space left on device`` and where, for a full disk)."""
    try:
        yield
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise UserError(write_failure(path, exc)) from exc


def write_failure(path: Path, exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"the disk is full: cannot write {path} (no space left on {_mount_point(path)}); free space, or " \
               f"choose another directory with hydra.run.dir=PATH"
    return f"cannot write {path}: {exc.strerror or exc}"


def _mount_point(path: Path) -> str:
    folder = Path(path).resolve().parent
    while not os.path.ismount(folder) and folder != folder.parent:
        folder = folder.parent
    return str(folder)


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
        # every column any row has, in the order they first appear (rows restored from an older
        # checkpoint may lack a newer column: empty there)
        fields = list(dict.fromkeys(key for row in rows for key in row))
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.run_dir / name, buf.getvalue())

    def write_json(self, name: str, obj: Any) -> None:
        atomic_write_text(self.run_dir / name, _to_json(obj))

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_text(self.run_dir / "summary.json", _to_json(summary))

    def update_summary(self, **fields: Any) -> None:
        """Change some fields of summary.json, keeping the rest."""
        path = self.run_dir / "summary.json"
        atomic_write_text(path, _to_json({**_read_summary(path), **fields}))


def save_model(model: torch.nn.Module, path: Path) -> None:
    """The model's state dict (tensors only: loadable with ``torch.load(weights_only=True)``), atomically."""
    save_tensors({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)


def save_tensors(obj: Any, path: Path, tmp: Path | None = None) -> None:
    """``torch.save`` to ``path`` through ``tmp``, like ``atomic_write_text``. Serialized in
    memory first and then written as bytes, so a full disk is an OSError (torch's own file
    writer turns it into "unexpected pos ...")."""
    tmp = tmp or path.with_name(f".{path.name}.tmp{os.getpid()}")
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with writing(path, tmp):
        with open(tmp, "wb") as f:
            f.write(buffer.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)


def start_summary(run_dir: Path) -> None:
    """A new run's first summary.json, ``running``, before anything is built (a resumed run
    keeps the one it has until its Trainer writes the next)."""
    path = Path(run_dir) / "summary.json"
    if not path.exists():
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, _to_json({"status": "running", "started_at": timestamp()}))


def mark_failed(run_dir: Path, error: BaseException, rank: int | None = None) -> None:
    """Record how the run ended in summary.json, keeping what it already holds: the stop's
    own status for an expected stop (diverged, preempted, interrupted), else ``failed``."""
    path = Path(run_dir) / "summary.json"
    status = getattr(error, "status", None) or ("interrupted" if isinstance(error, KeyboardInterrupt) else "failed")
    where = f"rank {rank}: " if rank is not None else ""
    kind = "" if getattr(error, "status", None) or isinstance(error, UserError) else f"{type(error).__name__}: "
    summary = {**_read_summary(path), "status": status, "error": f"{where}{kind}{error}".strip()}
    try:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, _to_json(summary))
    except (OSError, UserError):
        pass  # an unwritable run dir (a full disk) must not hide the original error


def mark_killed(run_dir: Path, reason: str) -> bool:
    """A run whose processes are gone while its summary.json still says ``running`` (seen
    from outside: the node went down with its watchdog, say) becomes ``killed`` with
    ``reason``; True if it was marked. A status the run wrote itself is kept."""
    path = Path(run_dir) / "summary.json"
    summary = _read_summary(path)
    if summary.get("status") != "running":
        return False
    try:
        atomic_write_text(path, _to_json({**summary, "status": "killed", "error": reason}))
    except (OSError, UserError):
        return False
    return True


def _read_summary(path: Path) -> dict[str, Any]:
    try:
        summary = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        return {}
    return summary if isinstance(summary, dict) else {}


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
