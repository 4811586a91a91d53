"""Report figures: curves per group (mean over seeds, shaded ± std) and final metric vs compression."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from compoptim.report.runs import Run
from compoptim.report.tables import GROUP_LABEL, group_label

# x-axis name -> (column, label, log scale)
X_AXES = {
    "epoch": ("epoch", "epoch", False),
    "bytes": ("bytes_sent_per_node", "bytes sent per node", True),
    "time": ("wall_time_s", "wall time (s)", False),
}
LABELS = {"test_acc": "test accuracy (averaged model)", "test_loss": "test loss (averaged model)",
          "train_loss": "training loss", "consensus_distance": "consensus distance (1/n) Σ‖x_i − x̄‖²",
          "local_test_acc_mean": "test accuracy (local models, mean)"}


def curve(evals: pd.DataFrame, x: str, y: str, path_stem: Path, formats: Sequence[str],
          logx: bool = False, logy: bool = False) -> list[Path]:
    """``y`` against ``x`` per group: the mean over seeds at each evaluation, ± std shaded."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, group in evals.groupby(GROUP_LABEL, sort=False):
        by_eval = group.groupby("epoch")
        xs, mean, std = by_eval[x].mean(), by_eval[y].mean(), by_eval[y].std().fillna(0.0)
        keep = np.isfinite(mean.to_numpy()) & np.isfinite(xs.to_numpy())
        if logx:
            keep &= xs.to_numpy() > 0
        if logy:
            keep &= mean.to_numpy() > 0
        xs, mean, std = xs[keep], mean[keep], std[keep]
        if xs.empty:
            continue
        line, = ax.plot(xs, mean, marker="o" if len(xs) < 12 else None, markersize=3, label=label)
        lower = (mean - std).clip(lower=mean * 1e-3) if logy else mean - std
        ax.fill_between(xs, lower, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel(X_AXES.get(_axis_name(x), (x, x, False))[1])
    ax.set_ylabel(LABELS.get(y, y))
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")
    ax.set_title(f"{LABELS.get(y, y)} vs {ax.get_xlabel()}", fontsize=9)
    return _save(fig, path_stem, formats)


def final_vs_compression(runs: Sequence[Run], group_keys: Sequence[str], metric: str, path_stem: Path,
                         formats: Sequence[str]) -> list[Path]:
    """Final ``metric`` (mean ± std over seeds) against the compressor's fp32/wire ratio (log x)."""
    points: dict[str, list[tuple[float, float]]] = {}
    for run in runs:
        ratio = (run.summary.get("compression") or {}).get("ratio")
        if run.status != "finished" or ratio is None or run.metrics is None or metric not in run.metrics:
            continue
        points.setdefault(group_label(run, group_keys), []).append((ratio, float(run.metrics[metric].iloc[-1])))
    if not points:
        return []
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, values in points.items():
        ratios = np.array([v[0] for v in values])
        finals = np.array([v[1] for v in values])
        std = finals.std(ddof=1) if len(finals) > 1 else 0.0
        ax.errorbar(ratios.mean(), finals.mean(), yerr=std, fmt="o", capsize=3, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("compression ratio (fp32 bytes / wire bytes per message)")
    ax.set_ylabel(f"final {LABELS.get(metric, metric)}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    ax.set_title(f"final {metric} vs compression", fontsize=9)
    return _save(fig, path_stem, formats)


def label_histogram(spec: dict, path_stem: Path, formats: Sequence[str]) -> list[Path]:
    """Stacked bars: per node, how many training samples of each class (or group) it holds."""
    counts = np.array(spec["label_histogram"])
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(counts) + 2), 3.6))
    bottom = np.zeros(len(counts))
    colours = plt.get_cmap("tab20")
    for cls in range(counts.shape[1]):
        ax.bar(range(len(counts)), counts[:, cls], bottom=bottom, color=colours(cls % 20), label=str(cls))
        bottom += counts[:, cls]
    ax.set_xlabel("node")
    ax.set_ylabel("training samples")
    ax.set_xticks(range(len(counts)))
    ax.set_title(f"partition={spec['partition']}: samples per class on each node", fontsize=9)
    if counts.shape[1] <= 20:
        ax.legend(title="class", fontsize=6, title_fontsize=7, ncol=2, bbox_to_anchor=(1.01, 1), loc="upper left")
    return _save(fig, path_stem, formats)


def _axis_name(column: str) -> str:
    return next((name for name, (col, _, _) in X_AXES.items() if col == column), column)


def _save(fig, path_stem: Path, formats: Sequence[str]) -> list[Path]:
    fig.tight_layout()
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = path_stem.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=130)
        written.append(path)
    plt.close(fig)
    return written
