"""Each file a run writes, read back and checked against the shape the report relies on.

A reader returns the file's content in that shape, None for a file the run has not written
(yet), or raises ``Damaged`` naming the file and what is wrong with it in a few words. The rest
of the report never sees a file that failed here, so it needs no checks of its own: a damaged
folder becomes a warning and an unreadable run, never a traceback or a wrong number.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Mapping
from numbers import Real
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

SUMMARY = "summary.json"
CONFIG = "config.resolved.yaml"
METRICS = "metrics.csv"
TOPOLOGY = "topology.json"
PARTITION = "partition.json"


class Damaged(Exception):
    """A run file that is not what runs write: ``file`` (its name in the run directory) and
    ``what`` is wrong with it."""

    def __init__(self, file: str, what: str) -> None:
        super().__init__(f"{file}: {what}")
        self.file, self.what = file, what


def kind(value: Any) -> str:
    """'a list', 'a string', 'null', ... : what a JSON or YAML value is, for a message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, Real):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({_short(value)})"
    if isinstance(value, Mapping):
        return "an empty mapping" if not value else "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _short(text: str, limit: int = 30) -> str:
    return repr(text if len(text) <= limit else f"{text[:limit]}...")


def read_text(run: Path, name: str) -> str | None:
    """The file's text (UTF-8, a byte-order mark allowed); None when the run has no such file."""
    path = Path(run) / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise Damaged(name, "a folder, not a file") from None
    except OSError as exc:
        raise Damaged(name, f"cannot be read ({exc.strerror or exc.__class__.__name__})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Damaged(name, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None


def read_json_object(run: Path, name: str) -> dict[str, Any] | None:
    """A JSON file holding one object; None when the run has no such file."""
    text = read_text(run, name)
    if text is None:
        return None
    if not text.strip():
        raise Damaged(name, "empty file")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Damaged(name, f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise Damaged(name, "not valid JSON (nested too deep)") from None
    if not isinstance(value, dict):
        raise Damaged(name, f"not a JSON object ({kind(value)})")
    return value


# summary.json: the fields the report reads and the types each may have. Every field may be null
# or absent (a run writes NaN as null; older runs lack newer fields); only the status must be there.
_NUMBER, _TEXT, _OBJECT = "a number", "a string", "an object"
_SUMMARY_FIELDS = {
    **dict.fromkeys(("test_acc", "test_loss", "train_loss", "best_test_acc", "local_test_acc_mean",
                     "consensus_distance", "compression_error", "bytes_sent_per_node", "bytes_received_per_node",
                     "bytes_sent_max_node", "wall_time_s", "train_time_s", "compute_time_s", "compress_time_s",
                     "comm_time_s", "wait_time_s", "spectral_gap", "best_epoch", "epochs", "steps", "num_params",
                     "n_nodes", "train_objective", "grad_norm_sq", "local_train_loss", "tracker_error",
                     "sim_time_s"), _NUMBER),
    **dict.fromkeys(("status", "error", "backend", "dataset_hash", "started_at", "ended_at", "device"), _TEXT),
    **dict.fromkeys(("code", "versions", "compression", "topology", "time_to_target"), _OBJECT),
}
_SUMMARY_NESTED = {("code", "version"): _TEXT, ("code", "git_commit"): _TEXT, ("versions", "compoptim"): _TEXT,
                   ("versions", "torch"): _TEXT, ("versions", "python"): _TEXT, ("compression", "name"): _TEXT,
                   ("compression", "ratio"): _NUMBER}
_CHECKS: dict[str, Callable[[Any], bool]] = {
    _NUMBER: lambda v: isinstance(v, Real) and not isinstance(v, bool),
    _TEXT: lambda v: isinstance(v, str),
    _OBJECT: lambda v: isinstance(v, dict),
}


def read_summary(run: Path) -> dict[str, Any]:
    """summary.json: an object with a status (a non-empty string) and, for each field the report
    reads, a value of that field's type or null."""
    summary = read_json_object(run, SUMMARY)
    if summary is None:
        raise Damaged(SUMMARY, "missing")
    if "status" not in summary:
        raise Damaged(SUMMARY, "no status")
    if not isinstance(summary["status"], str) or not summary["status"].strip():
        raise Damaged(SUMMARY, f"status is {kind(summary['status'])}, not a word such as finished")
    for key, expected in _SUMMARY_FIELDS.items():
        _check(summary.get(key), key, expected)
    for (outer, key), expected in _SUMMARY_NESTED.items():
        _check((summary.get(outer) or {}).get(key), f"{outer}.{key}", expected)
    _check((summary.get("code") or {}).get("git_dirty"), "code.git_dirty", "true or false",
           lambda v: isinstance(v, bool))
    hosts = summary.get("hosts")
    if hosts is not None and not (isinstance(hosts, str) or
                                  (isinstance(hosts, list) and all(isinstance(h, str) for h in hosts))):
        raise Damaged(SUMMARY, f"hosts is {kind(hosts)}, not a list of host names")
    return summary


def _check(value: Any, key: str, expected: str, check: Callable[[Any], bool] | None = None) -> None:
    if value is not None and not (check or _CHECKS[expected])(value):
        raise Damaged(SUMMARY, f"{key} is {kind(value)}, not {expected}")


def read_config(run: Path) -> dict[str, Any]:
    """config.resolved.yaml: a non-empty YAML mapping (the run's whole config)."""
    text = read_text(run, CONFIG)
    if text is None:
        raise Damaged(CONFIG, "missing")
    if not text.strip():
        raise Damaged(CONFIG, "empty file")
    try:
        tree = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise Damaged(CONFIG, f"not valid YAML ({getattr(exc, 'problem', None) or 'unreadable'}{where})") from None
    except RecursionError:
        raise Damaged(CONFIG, "not valid YAML (nested too deep)") from None
    if not isinstance(tree, dict) or not tree:
        raise Damaged(CONFIG, f"not a YAML mapping of settings ({kind(tree)})")
    return tree


class Metrics:
    """metrics.csv as read: its rows (None: no evaluations yet) and whether its last line was cut
    mid-row and dropped."""

    def __init__(self, frame: pd.DataFrame | None, cut: bool) -> None:
        self.frame, self.cut = frame, cut


def read_metrics(run: Path, summary: Mapping[str, Any]) -> Metrics:
    """metrics.csv: a header naming each column once (epoch among them), then one row per evaluation
    with a number (or nothing: NaN) in every column. A last line without its line end was cut mid-row
    (a partial write or copy) and is dropped. A finished run must have all its evaluations: a file
    that is missing, has no rows, ends before the summary's last step, or lost its last row is damaged."""
    finished = summary["status"] == "finished"
    text = read_text(run, METRICS)
    if text is None:
        if finished:
            raise Damaged(METRICS, "missing, though the run finished")
        return Metrics(None, cut=False)
    if not text.strip():
        raise Damaged(METRICS, "empty file (not even a header)")
    cut = not text.endswith(("\n", "\r"))
    if cut:
        end = max(text.rfind("\n"), text.rfind("\r"))
        if end < 0:
            raise Damaged(METRICS, "cut inside its header (partial write)")
        if finished:
            raise Damaged(METRICS, "last line cut mid-row (partial write), so the finished run's last "
                                   "evaluation is lost")
        text = text[: end + 1]
    header, rows, lines = _csv_rows(text)
    frame = _numbers(header, rows, lines) if rows else None
    if frame is None and finished:
        raise Damaged(METRICS, "a header and no rows, though the run finished")
    steps = summary.get("steps")
    if finished and steps is not None and "step" in frame and frame["step"].iloc[-1] != steps:
        raise Damaged(METRICS, f"its last row is step {_cell(frame['step'].iloc[-1])}, but summary.json says the "
                               f"run finished at step {_cell(steps)} (rows lost)")
    return Metrics(frame, cut)


def _csv_rows(text: str) -> tuple[list[str], list[list[str]], list[int]]:
    """The header, the non-blank rows and each row's line number; every row as long as the header."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows, lines = [], []
    try:
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line holds no evaluation
            if header is None:
                header = _header(row)
            elif len(row) != len(header):
                raise Damaged(METRICS, f"line {reader.line_num} has {len(row)} cells, the header {len(header)}")
            else:
                rows.append(row)
                lines.append(reader.line_num)
    except csv.Error as exc:
        raise Damaged(METRICS, f"not valid CSV (line {reader.line_num}: {exc})") from None
    if header is None:
        raise Damaged(METRICS, "no header")
    return header, rows, lines


def _header(row: list[str]) -> list[str]:
    names = [name.strip() for name in row]
    if any(not name for name in names):
        raise Damaged(METRICS, "the header has a column without a name")
    twice = next((name for k, name in enumerate(names) if name in names[:k]), None)
    if twice is not None:
        raise Damaged(METRICS, f"the header names column {twice!r} twice")
    if "epoch" not in names:
        raise Damaged(METRICS, "the header has no epoch column")
    return names


def _numbers(header: list[str], rows: list[list[str]], lines: list[int]) -> pd.DataFrame:
    """The rows as numbers, parsed as pandas parses a CSV (empty, nan, NaN: missing); a cell that is
    not a number is damage."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    frame = pd.read_csv(io.StringIO(buffer.getvalue()))
    for column in frame.columns:
        if frame[column].dtype.kind in "iuf":
            continue
        for k, cell in enumerate(frame[column]):
            if not _is_number(cell):
                raise Damaged(METRICS, f"line {lines[k]}, column {column}: {_short(str(cell))} is not a number")
        frame[column] = pd.to_numeric(frame[column])
    return frame


def _is_number(cell: Any) -> bool:
    if isinstance(cell, float) and math.isnan(cell):
        return True
    if isinstance(cell, bool):
        return False
    try:
        pd.to_numeric(pd.Series([cell]), errors="raise")
    except (ValueError, TypeError):
        return False
    return True


def _cell(value: Any) -> str:
    return str(int(value)) if isinstance(value, Real) and float(value).is_integer() else str(value)


def read_topology(run: Path) -> dict[str, Any] | None:
    """topology.json: name, n (nodes), spectral_gap, distance_to_average, and per round its edges
    [i, j, w] between nodes 0..n-1 (a torus also its cols); None when the run has none."""
    spec = read_json_object(run, TOPOLOGY)
    if spec is None:
        return None
    _need(spec, TOPOLOGY, "name", _CHECKS[_TEXT], "a string")
    _need(spec, TOPOLOGY, "n", _count, "a whole number >= 1")
    for key in ("spectral_gap", "distance_to_average"):
        _need(spec, TOPOLOGY, key, _finite, "a finite number")
    if spec["name"] == "torus":
        _need(spec, TOPOLOGY, "cols", _count, "a whole number >= 1")
    rounds = spec.get("rounds")
    if not isinstance(rounds, list) or not rounds:
        raise Damaged(TOPOLOGY, f"rounds is {kind(rounds)}, not a list of rounds")
    n = spec["n"]
    for r, round_ in enumerate(rounds):
        edges = round_.get("edges") if isinstance(round_, dict) else None
        if not isinstance(edges, list) or not all(_edge(e, n) for e in edges):
            raise Damaged(TOPOLOGY, f"round {r}: edges are not a list of [i, j, weight] with nodes 0..{n - 1}")
    return spec


def read_partition(run: Path) -> dict[str, Any] | None:
    """partition.json: the partition's name and, per node, its sample count of each class
    (as many classes on every node); None when the run has none."""
    spec = read_json_object(run, PARTITION)
    if spec is None:
        return None
    _need(spec, PARTITION, "partition", _CHECKS[_TEXT], "a string")
    counts = spec.get("label_histogram")
    if not (isinstance(counts, list) and counts and all(isinstance(node, list) and node for node in counts)
            and len({len(node) for node in counts}) == 1
            and all(_whole(c) for node in counts for c in node)):
        raise Damaged(PARTITION, "label_histogram is not one list of class counts (whole numbers >= 0) per "
                                 "node, as many on each")
    return spec


def _need(spec: dict, file: str, key: str, check: Callable[[Any], bool], expected: str) -> None:
    if not check(spec.get(key)):
        raise Damaged(file, f"{key} is {kind(spec.get(key))}, not {expected}" if key in spec else f"no {key}")


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _count(value: Any) -> bool:
    return _whole(value) and value >= 1


def _finite(value: Any) -> bool:
    return _CHECKS[_NUMBER](value) and math.isfinite(value)


def _edge(edge: Any, n: int) -> bool:
    return (isinstance(edge, list) and len(edge) == 3
            and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n for i in edge[:2])
            and _finite(edge[2]))
