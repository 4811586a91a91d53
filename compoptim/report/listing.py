"""runs.csv: one row per run: how it ended, which group it counts in (or whose duplicate it is),
the settings that vary between runs, its final figures and where it ran."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from compoptim.report.grouping import FACTS, dimensions, group_runs, value
from compoptim.report.runs import Run, varying_keys
from compoptim.report.tables import DUPLICATE_OF, GROUP_LABEL

# What the page links to in each run directory, by link text.
RUN_FILES = {"config": "config.resolved.yaml", "log": "compoptim.log", "metrics": "metrics.csv",
             "summary": "summary.json"}


def listing_columns(runs: Sequence[Run], group_keys: Sequence[str]) -> list[str]:
    """The group's dimensions, config keys that vary but were pooled by --group-by, then the facts
    (every run records where and with what it ran, varying or not)."""
    dims = dimensions(runs, group_keys)
    pooled = [k for k in varying_keys(list(runs)) if k not in dims]
    return [*dims, *pooled, *(f for f in FACTS if f not in dims)]


def runs_table(runs: Sequence[Run], group_keys: Sequence[str]) -> pd.DataFrame:
    """Every run, readable or not; a run without a config has no group."""
    grouped = [r for r in runs if r.config]
    columns = listing_columns(grouped, group_keys)
    group_of = {run.path: group for group in group_runs(grouped, group_keys) for run in group.members}
    rows = []
    for run in runs:
        group, s = group_of.get(run.path), run.summary
        duplicate_of = group.duplicate_of.get(run.path) if group else None
        hosts = s.get("hosts")
        rows.append({"run": str(run.path), "status": run.status, "error": run.error,
                     GROUP_LABEL: group.label if group else None,
                     **{c: value(run, c) if group else None for c in columns},
                     "seed": run.config.get("seed"), DUPLICATE_OF: None if duplicate_of is None else str(duplicate_of),
                     "test_acc": s.get("test_acc"), "test_loss": s.get("test_loss"),
                     "consensus_distance": s.get("consensus_distance"),
                     "MB per node": None if s.get("bytes_sent_per_node") is None else s["bytes_sent_per_node"] / 1e6,
                     "wall time s": s.get("wall_time_s"), "started_at": s.get("started_at"),
                     "hosts": ",".join(hosts) if isinstance(hosts, list) else hosts})
    return pd.DataFrame(rows)


def run_files(run: Path) -> dict[str, Path]:
    """The files of RUN_FILES that ``run`` has, by link text."""
    return {label: Path(run) / name for label, name in RUN_FILES.items() if (Path(run) / name).exists()}
