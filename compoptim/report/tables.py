"""Tidy tables from runs: every evaluation, and one summary row per group of seeds."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from compoptim.report.runs import Run

GROUP_LABEL = "group"


def evaluations(runs: Sequence[Run], group_keys: Sequence[str]) -> pd.DataFrame:
    """One row per (run, evaluation): run, status, group label, the grouping keys, seed and
    every metric column. Runs without readable metrics contribute no rows."""
    frames = []
    for run in runs:
        if run.metrics is None or run.metrics.empty:
            continue
        frame = run.metrics.copy()
        frame.insert(0, "run", str(run.path))
        frame.insert(1, "status", run.status)
        frame.insert(2, GROUP_LABEL, group_label(run, group_keys))
        for i, key in enumerate(group_keys):
            frame.insert(3 + i, key, run.config.get(key))
        frame.insert(3 + len(group_keys), "seed", run.config.get("seed"))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def group_label(run: Run, group_keys: Sequence[str]) -> str:
    """'optimizer=adam, compressor=topk, optimizer.lr=0.01': a group's option by its group name."""
    if not group_keys:
        return "all runs"
    return ", ".join(f"{key[: -len('.name')] if key.endswith('.name') else key}={run.config.get(key)}"
                     for key in group_keys)


def crossing(metrics: pd.DataFrame, metric: str, target: float, x: str) -> float:
    """The first value of column ``x`` at which ``metric`` reaches ``target`` (NaN if never)."""
    if metrics is None or metric not in metrics or x not in metrics:
        return math.nan
    reached = metrics[metrics[metric] >= target]
    return float(reached[x].iloc[0]) if len(reached) else math.nan


def summary_table(runs: Sequence[Run], group_keys: Sequence[str], metric: str = "test_acc",
                  target: float | None = None) -> pd.DataFrame:
    """Per group (seeds pooled): runs, finished runs, final and best ``metric`` (mean and std
    over seeds), final test loss, bytes per node, wall time, and with ``target`` the bytes and
    wall time at which ``metric`` first reached it (mean over the seeds that did; how many did)."""
    rows = []
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(group_label(run, group_keys), []).append(run)
    for label, members in groups.items():
        done = [r for r in members if r.status == "finished" and r.metrics is not None and metric in r.metrics]
        final = [float(r.metrics[metric].iloc[-1]) for r in done]
        best = [float(r.metrics[metric].max()) for r in done]
        row = {GROUP_LABEL: label, **{k: members[0].config.get(k) for k in group_keys},
               "runs": len(members), "finished": len(done),
               "seeds": ",".join(str(r.config.get("seed")) for r in members),
               f"final {metric}": _mean(final), f"final {metric} std": _std(final),
               f"best {metric}": _mean(best), f"best {metric} std": _std(best),
               "final test_loss": _mean([float(r.metrics["test_loss"].iloc[-1]) for r in done
                                         if "test_loss" in r.metrics]),
               "MB per node": _mean([r.summary.get("bytes_sent_per_node", math.nan) / 1e6 for r in done]),
               "wall time s": _mean([r.summary.get("wall_time_s", math.nan) for r in done])}
        if target is not None:
            mb = [crossing(r.metrics, metric, target, "bytes_sent_per_node") / 1e6 for r in done]
            secs = [crossing(r.metrics, metric, target, "wall_time_s") for r in done]
            reached = [v for v in mb if not math.isnan(v)]
            row.update({f"MB to {metric}>={target:g}": _mean(reached),
                        f"s to {metric}>={target:g}": _mean([v for v in secs if not math.isnan(v)]),
                        "reached": f"{len(reached)}/{len(done)}"})
        rows.append(row)
    return pd.DataFrame(rows)


def to_markdown(table: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub Markdown table (mean ± std merged into one cell where both exist)."""
    table = table.copy()
    for column in [c for c in table.columns if c.endswith(" std")]:
        base = column[: -len(" std")]
        table[base] = [_pm(m, s, digits) for m, s in zip(table[base], table[column])]
        table = table.drop(columns=column)
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    lines = [header, "|" + "---|" * len(table.columns)]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(_cell(v, digits) for v in row) + " |")
    return "\n".join(lines)


def _pm(mean: float, std: float, digits: int) -> str:
    if isinstance(mean, float) and math.isnan(mean):
        return "—"
    return f"{mean:.{digits}g} ± {std:.{digits}g}" if not math.isnan(std) else f"{mean:.{digits}g}"


def _cell(value, digits: int) -> str:
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.{digits}g}"
    return str(value)


def _mean(values: Sequence[float]) -> float:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def _std(values: Sequence[float]) -> float:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
