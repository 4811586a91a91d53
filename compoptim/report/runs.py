"""Finding run directories and loading their summaries."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

SUMMARY_COLUMNS = ["run", "status", "n_nodes", "test_acc", "test_loss", "consensus_distance",
                   "bytes_sent_per_node", "wall_time_s"]


def find_runs(paths: list[Path]) -> list[Path]:
    """Every directory holding a summary.json at or below each path, in path order."""
    runs: list[Path] = []
    for path in paths:
        found = sorted(p.parent for p in Path(path).rglob("summary.json"))
        runs.extend(r for r in found if r not in runs)
    return runs


def load_topologies(runs: list[Path]) -> dict[str, dict]:
    """The distinct topologies of the runs (from topology.json), keyed by a file-name stem
    such as ``topology-ring-n8``; unreadable files are skipped."""
    found: dict[str, dict] = {}
    for run in runs:
        try:
            spec = json.loads((run / "topology.json").read_text())
        except (OSError, ValueError):
            continue
        if spec in found.values():
            continue
        stem = f"topology-{spec['name']}-n{spec['n']}"
        k = 1
        while f"{stem}{'' if k == 1 else f'-{k}'}" in found:
            k += 1
        found[f"{stem}{'' if k == 1 else f'-{k}'}"] = spec
    return found


def load_summaries(runs: list[Path]) -> pd.DataFrame:
    """One row per run; an unreadable summary is a row with that status, never a crash."""
    rows = []
    for run in runs:
        try:
            summary = json.loads((run / "summary.json").read_text())
        except (OSError, ValueError) as exc:
            summary = {"status": f"unreadable ({exc.__class__.__name__})"}
        rows.append({"run": str(run), **{k: summary.get(k) for k in SUMMARY_COLUMNS[1:]}})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
