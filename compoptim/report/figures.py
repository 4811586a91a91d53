"""Report figures: curves per group (mean over seeds, shaded ± std), final metric vs compression,
samples per class on each node. The *_figure functions build the matplotlib figure; the others save it."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from compoptim.report.grouping import Group
from compoptim.report.styles import Encoding, Style
from compoptim.report.tables import GROUP_LABEL

# x-axis name -> (column, label, log scale, factor from the column's unit to the axis unit)
X_AXES = {
    "epoch": ("epoch", "epoch", False, 1.0),
    "bytes": ("bytes_sent_per_node", "MB sent per node", True, 1e-6),
    "time": ("wall_time_s", "wall time (s)", False, 1.0),
    "sim_time": ("sim_time_s", "simulated time on the run's network (s)", False, 1.0),
}
LABELS = {"test_acc": "test accuracy (averaged model)", "test_loss": "test loss (averaged model)",
          "train_loss": "training loss", "consensus_distance": "consensus distance (1/n) Σ‖x_i − x̄‖²",
          "local_test_acc_mean": "test accuracy (local models, mean)",
          "train_objective": "training objective f(x̄)", "grad_norm_sq": "‖∇f(x̄)‖²",
          "local_train_loss": "training loss of the local models (1/n) Σ f_i(x_i)",
          "tracker_error": "tracker error (1/n) Σ‖y_i − ∇f(x̄)‖²"}
# Float32 parameters agree to ~1e-7, so a squared distance ~1e-14 of the largest is round-off:
# values that far below the largest (or below 1e-30, or zero) would only stretch a log axis.
ROUND_OFF = 1e-12
TINY = 1e-30
_SIZE = (6.4, 3.8)  # the plot; the legend at its right widens the saved image


def curve_figure(evals: pd.DataFrame, x: str, y: str, encoding: Encoding, logx: bool = False,
                 logy: bool = False) -> Figure:
    """``y`` against ``x`` per group: the mean over seeds at each evaluation, ± std shaded."""
    factor = next((f for column, _, _, f in X_AXES.values() if column == x), 1.0)
    series = []
    for label, group in evals.groupby(GROUP_LABEL, sort=False):
        by_eval = group.groupby("epoch")
        xs, mean, std = by_eval[x].mean() * factor, by_eval[y].mean(), by_eval[y].std().fillna(0.0)
        keep = np.isfinite(mean.to_numpy()) & np.isfinite(xs.to_numpy())
        if logx:
            keep &= xs.to_numpy() > 0
        series.append((label, xs[keep], mean[keep], std[keep]))
    floor = _log_floor([m for _, _, m, _ in series]) if logy else None
    fig, ax = plt.subplots(figsize=_SIZE, layout="constrained")
    for label, xs, mean, std in series:
        if floor is not None:
            xs, mean, std = xs[mean > floor], mean[mean > floor], std[mean > floor]
        if xs.empty:
            continue
        style = encoding.styles.get(label, Style("C0"))
        marker = style.marker or ("o" if len(xs) < 12 else None)
        ax.plot(xs, mean, color=style.colour, linestyle=style.linestyle, marker=marker, markersize=3.5,
                markevery=max(1, len(xs) // 10), label=label)
        lower = (mean - std).clip(lower=floor) if logy else mean - std
        ax.fill_between(xs, lower, mean + std, color=style.colour, alpha=0.15, linewidth=0)
    ax.set_xlabel(next((lab for column, lab, _, _ in X_AXES.values() if column == x), x))
    ax.set_ylabel(LABELS.get(y, y))
    if x == "epoch":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
        drawn = [m[m > floor] for _, _, m, _ in series]
        lows = [float(m.min()) for m in drawn if len(m)]
        if lows:
            ax.set_ylim(bottom=min(lows) / 2)
        if any((m <= floor).any() for _, _, m, _ in series):
            hidden = [label for label, _, m, _ in series if len(m) and not (m > floor).any()]
            note = f"values ≤ {floor:.0e} (zero or round-off) not drawn" + (
                f"; no value above it: {'; '.join(hidden)}" if hidden else "")
            ax.text(0.01, 0.01, "\n".join(textwrap.wrap(note, 90)), transform=ax.transAxes, fontsize=7,
                    color="0.4", va="bottom")
    ax.grid(True, which="both", alpha=0.3)
    _legend_outside(ax, *encoding.handles())
    ax.set_title(f"{LABELS.get(y, y)} vs {ax.get_xlabel()}", fontsize=9)
    return fig


def _log_floor(means: Sequence[pd.Series]) -> float:
    values = np.concatenate([m.to_numpy() for m in means]) if means else np.array([])
    top = values[np.isfinite(values)].max(initial=0.0)
    return max(TINY, top * ROUND_OFF)


def compression_figure(groups: Sequence[Group], metric: str, encoding: Encoding) -> Figure | None:
    """Final ``metric`` (mean ± std over seeds) against the compressor's fp32/wire ratio (log x);
    None when no run compresses (nothing to compare)."""
    if not any(_compressed(r) for g in groups for r in g.finished):
        return None
    points = {}
    for group in groups:
        done = [r for r in group.finished if r.metrics is not None and metric in r.metrics
                and (r.summary.get("compression") or {}).get("ratio") is not None]
        if done:
            points[group.label] = ([r.summary["compression"]["ratio"] for r in done],
                                   [float(r.metrics[metric].iloc[-1]) for r in done])
    fig, ax = plt.subplots(figsize=_SIZE, layout="constrained")
    for label, (ratios, finals) in points.items():
        std = np.std(finals, ddof=1) if len(finals) > 1 else 0.0
        ax.errorbar(np.mean(ratios), np.mean(finals), yerr=std, fmt=encoding.point_markers.get(label, "o"),
                    color=encoding.styles.get(label, Style("C0")).colour, capsize=3, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("compression ratio (fp32 bytes / wire bytes per message)")
    ax.set_ylabel(f"final {LABELS.get(metric, metric)}")
    ax.grid(True, which="both", alpha=0.3)
    _legend_outside(ax, *ax.get_legend_handles_labels())
    ax.set_title(f"final {metric} vs compression", fontsize=9)
    return fig


def _compressed(run) -> bool:
    """Whether the run's messages were compressed: by the compressor's name, else by its ratio."""
    compression = run.summary.get("compression") or {}
    name = compression.get("name", run.config.get("compressor.name"))
    return name != "none" if name is not None else compression.get("ratio", 1.0) != 1.0


def label_histogram_figure(spec: dict, title: str) -> Figure:
    """Stacked bars: per node, how many training samples of each class (or group) it holds."""
    counts = np.array(spec["label_histogram"])
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(counts) + 2), 3.6), layout="constrained")
    bottom = np.zeros(len(counts))
    colours = plt.get_cmap("tab20")
    for cls in range(counts.shape[1]):
        ax.bar(range(len(counts)), counts[:, cls], bottom=bottom, color=colours(cls % 20), label=str(cls))
        bottom += counts[:, cls]
    ax.set_xlabel("node")
    ax.set_ylabel("training samples")
    ax.set_xticks(range(len(counts)))
    ax.set_title(f"partition={spec['partition']}, samples per class on each node\n{title}", fontsize=9)
    if counts.shape[1] <= 20:
        ax.legend(title="class", fontsize=6, title_fontsize=7, ncol=2, bbox_to_anchor=(1.01, 1), loc="upper left")
    return fig


def _legend_outside(ax, handles, labels) -> None:
    """At the right of the plotting area, so it never hides a curve."""
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                  fontsize=8, frameon=False)


def save(fig: Figure, path_stem: Path, formats: Sequence[str]) -> list[Path]:
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = path_stem.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=130, bbox_inches="tight")
        written.append(path)
    plt.close(fig)
    return written
