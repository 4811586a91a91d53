"""Tidy tables from runs: every evaluation, and one summary row per group (one run per seed)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from compoptim.report.formatting import merge_std
from compoptim.report.grouping import dimensions, group_runs
from compoptim.report.runs import Run

GROUP_LABEL = "group"
DUPLICATE_OF = "duplicate_of"


def evaluations(runs: Sequence[Run], group_keys: Sequence[str]) -> pd.DataFrame:
    """One row per (run, evaluation): run, status, group label, the group's dimensions, seed,
    the run it duplicates (empty for a run that counts) and every metric column as metrics.csv
    wrote it. Runs without readable metrics contribute no rows."""
    dims = dimensions(runs, group_keys)
    group_of = {run.path: group for group in group_runs(runs, group_keys) for run in group.members}
    frames = []
    for run in runs:
        if run.metrics is None or run.metrics.empty:
            continue
        group = group_of[run.path]
        duplicate_of = group.duplicate_of.get(run.path)
        ids = {"run": str(run.path), "status": run.status, GROUP_LABEL: group.label, **group.values,
               "seed": run.config.get("seed"), DUPLICATE_OF: None if duplicate_of is None else str(duplicate_of)}
        frames.append(pd.concat([pd.DataFrame({k: [v] * len(run.metrics) for k, v in ids.items()}),
                                 run.metrics.reset_index(drop=True)], axis=1))
    if not frames:
        return pd.DataFrame(columns=["run", "status", GROUP_LABEL, *dims, "seed", DUPLICATE_OF])
    return pd.concat(frames, ignore_index=True)


def crossing(metrics: pd.DataFrame, metric: str, target: float, x: str) -> float:
    """The first value of column ``x`` at which ``metric`` reaches ``target`` (NaN if never)."""
    if metrics is None or metric not in metrics or x not in metrics:
        return math.nan
    reached = metrics[metrics[metric] >= target]
    return float(reached[x].iloc[0]) if len(reached) else math.nan


def summary_table(runs: Sequence[Run], group_keys: Sequence[str], metric: str = "test_acc",
                  target: float | None = None) -> pd.DataFrame:
    """Per group: its dimensions, runs (all of them), finished (distinct seeds with a finished
    run: the n of every mean), seeds, final and best ``metric`` (mean and std over those seeds),
    final test loss, MB sent per node, wall and simulated time, with ``target`` the MB, wall and
    simulated time at which ``metric`` first reached it (mean over the seeds that did; how many did), and duplicates
    (runs that repeat a counted run's settings and seed, left out of the numbers)."""
    rows = []
    for group in group_runs(runs, group_keys):
        done = [r for r in group.finished if r.metrics is not None and metric in r.metrics]
        final = [float(r.metrics[metric].iloc[-1]) for r in done]
        best = [float(r.metrics[metric].max()) for r in done]
        row = {GROUP_LABEL: group.label, **group.values,
               "runs": len(group.members), "finished": len(done), "seeds": ",".join(map(str, group.seeds)),
               f"final {metric}": _mean(final), f"final {metric} std": _std(final),
               f"best {metric}": _mean(best), f"best {metric} std": _std(best),
               "final test_loss": _mean([float(r.metrics["test_loss"].iloc[-1]) for r in done
                                         if "test_loss" in r.metrics]),
               "MB per node": _mean([_summary_float(r, "bytes_sent_per_node") / 1e6 for r in done]),
               "wall time s": _mean([_summary_float(r, "wall_time_s") for r in done]),
               "sim time s": _mean([_summary_float(r, "sim_time_s") for r in done])}
        if target is not None:
            mb = [crossing(r.metrics, metric, target, "bytes_sent_per_node") / 1e6 for r in done]
            secs = [crossing(r.metrics, metric, target, "wall_time_s") for r in done]
            sim = [crossing(r.metrics, metric, target, "sim_time_s") for r in done]
            reached = [v for v in mb if not math.isnan(v)]
            row.update({f"MB to {metric}>={target:g}": _mean(reached),
                        f"s to {metric}>={target:g}": _mean([v for v in secs if not math.isnan(v)]),
                        f"sim s to {metric}>={target:g}": _mean([v for v in sim if not math.isnan(v)]),
                        "reached": f"{len(reached)}/{len(done)}"})
        row["duplicates"] = len(group.duplicate_of)
        rows.append(row)
    return pd.DataFrame(rows)


def to_markdown(table: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub Markdown table (mean ± std merged into one cell where both exist)."""
    text = merge_std(table, digits)
    lines = ["| " + " | ".join(map(str, text.columns)) + " |", "|" + "---|" * len(text.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in text.itertuples(index=False)]
    return "\n".join(lines)


def _summary_float(run: Run, key: str) -> float:
    value = run.summary.get(key)
    return math.nan if value is None else float(value)


def _mean(values: Sequence[float]) -> float:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def _std(values: Sequence[float]) -> float:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
