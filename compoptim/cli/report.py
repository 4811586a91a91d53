"""compoptim-report: tables and figures from run directories.

examples:
  compoptim-report multirun/2026-11-26/10-00-00                 # a sweep -> multirun/.../report/
  compoptim-report outputs/ multirun/ --out report/ --target 0.95
  compoptim-report multirun/x --where optimizer.name=adam --metric test_loss --x bytes
  compoptim-report multirun/x --group-by optimizer.name --format png

Finds every run (a directory with a summary.json) at or below each PATH: single runs, sweep
directories, or folders holding them. Runs are grouped by the config keys that differ between
them (--group-by chooses them) and always apart by node count, backend, code version and dataset
hash; the seed is averaged over (mean ± std over distinct seeds; a duplicate run, identical in
all of that and the seed, counts once). Writes into the output folder:
  evaluations.csv (+ .parquet with pyarrow)  every evaluation of every run, tidy
  summary.csv, summary.md                    per group: final/best metric, final loss, MB per
                                             node, wall time, with --target the MB and time to
                                             reach it, and the number of duplicates
  runs.csv                                   one row per run: status, group, seed, duplicate_of
  settings.csv                               the settings the runs share (scope, setting, value)
  <metric>_vs_<x>.png (+ --format)           curves per group (x: epoch, bytes (MB, log), time)
  consensus_distance_vs_epoch, final_<metric>_vs_compression (when a run compresses),
  topology-<name>-n<N>, partition-<name>-n<N> (samples per class on each node)
  index.html                                 all of it on one page, with links to each run's files
Failed and unfinished runs are listed with their status and left out of the figures. A run whose
summary.json, config.resolved.yaml or metrics.csv is damaged (cut, not UTF-8, not the shape runs
write) gets one warning line naming the file and is listed as unreadable; the others are reported.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from compoptim.cli.help import version_text
from compoptim.errors import UserError
from compoptim.report import draw_topology, find_runs, load_run, load_topologies, varying_keys
from compoptim.report.figures import X_AXES, compression_figure, curve_figure, label_histogram_figure, save
from compoptim.report.formatting import number
from compoptim.report.grouping import Group, dimensions, group_runs
from compoptim.report.html import write_index
from compoptim.report.listing import runs_table
from compoptim.report.notes import notes
from compoptim.report.runs import UNREADABLE, Run, load_partitions
from compoptim.report.settings import page_rows, settings_table
from compoptim.report.styles import encode
from compoptim.report.tables import DUPLICATE_OF, GROUP_LABEL, evaluations, summary_table, to_markdown

FORMATS = ("png", "pdf")
EXPLAIN = ("One row per group: runs that differ in nothing but the seed (same varying settings, node count, "
           "backend, code and dataset). Numbers are mean ± std over the group's distinct seeds with a finished "
           "run (finished = that count); runs counts every run of the group. A duplicate (same settings, code, "
           "dataset and seed as another run) counts once, as its first finished run in path order. "
           "Bytes are MB (10^6 bytes) sent per node.")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="compoptim-report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=version_text("compoptim-report"))
    parser.add_argument("paths", nargs="+", type=Path, help="run dirs, sweep dirs or folders holding them")
    parser.add_argument("--out", type=Path, help="output folder (default: FIRST_PATH/report)")
    parser.add_argument("--metric", default="test_acc", help="metric column for curves and summary (default test_acc)")
    parser.add_argument("--x", nargs="+", choices=list(X_AXES),
                        help="x-axes of the metric curves (default: epoch, bytes, time, and sim_time when a run "
                             "simulates a network other than ideal)")
    parser.add_argument("--group-by", nargs="+", metavar="KEY",
                        help="config keys to group by, e.g. optimizer.name (default: the keys that vary)")
    parser.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                        help="keep runs whose config KEY equals VALUE (repeatable; 'optimizer' means optimizer.name)")
    parser.add_argument("--target", type=float, help="report bytes and time to reach this metric value")
    parser.add_argument("--format", nargs="+", choices=FORMATS, default=list(FORMATS),
                        help="figure formats (PNG is always written too: the page shows it)")
    parser.add_argument("--csv", type=Path, help="also write the per-run listing to this CSV file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    try:
        report(parse_args(argv))
    except UserError as exc:
        print(f"compoptim-report: error: {exc}", file=sys.stderr)
        sys.exit(2)


def select_runs(args: argparse.Namespace, paths: list[Path]) -> list[Run]:
    """Every run of ``paths`` that passes --where, and every unreadable one (it cannot be told
    whether it would pass: it is listed). Prints the warnings about damaged files of each run."""
    runs = [load_run(p) for p in paths]
    for run in runs:
        for warning in run.warnings:
            print(f"compoptim-report: warning: {warning}", file=sys.stderr)
    if all(r.status == UNREADABLE for r in runs):
        damaged = "the run" if len(runs) == 1 else f"all {len(runs)} runs"
        raise UserError(f"nothing to report: {damaged} under {', '.join(map(str, args.paths))} "
                        f"{'is' if len(runs) == 1 else 'are'} unreadable (damaged files, see the warnings)")
    for condition in args.where:
        key, sep, value = condition.partition("=")
        if not sep:
            raise UserError(f"--where needs KEY=VALUE; got '{condition}'")
        key = key if "." in key or key == "seed" else f"{key}.name"
        runs = [r for r in runs if r.status == UNREADABLE or str(r.config.get(key)) == value]
    if all(r.status == UNREADABLE for r in runs):
        raise UserError(f"no runs match {' and '.join(args.where)}")
    return runs


def find_run_paths(args: argparse.Namespace) -> list[Path]:
    """The run directories under the paths (a directory with a summary.json)."""
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise UserError(f"no such path: {', '.join(missing)}")
    paths = find_runs(args.paths)
    if not paths:
        raise UserError(f"no runs (no summary.json) under {', '.join(map(str, args.paths))}")
    return paths


def output_folder(args: argparse.Namespace) -> Path:
    """--out (default FIRST_PATH/report), checked before anything is written: a folder, or a place
    where one can be made; --csv likewise a file in an existing folder."""
    out = args.out or args.paths[0] / "report"
    option = "--out" if args.out else "the output folder (FIRST_PATH/report; choose one with --out)"
    if _is(out, Path.exists) and not _is(out, Path.is_dir):
        raise UserError(f"{option}: {out} is a file, not a folder")
    existing = next(p for p in [out, *out.absolute().parents] if _is(p, Path.exists))
    if not existing.is_dir():
        raise UserError(f"{option}: {out} cannot be made: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{option}: {out} cannot be written: no permission to write into {existing}")
    if args.csv is not None:
        if _is(args.csv, Path.is_dir):
            raise UserError(f"--csv: {args.csv} is a folder; give a file name")
        if not _is(args.csv.absolute().parent, Path.is_dir):
            raise UserError(f"--csv: {args.csv} cannot be written: no folder {args.csv.parent}")
    return out


def _is(path: Path, test) -> bool:
    try:
        return test(path)
    except OSError:  # a parent one may not look into: as good as absent
        return False


@contextlib.contextmanager
def writing() -> Iterator[None]:
    """A file that cannot be written (no permission, a full disk) is one line, not a traceback."""
    try:
        yield
    except OSError as exc:
        where = exc.filename or "the output folder"
        raise UserError(f"cannot write {where}: {exc.strerror or exc}") from None


def report(args: argparse.Namespace) -> None:
    paths = find_run_paths(args)
    out = output_folder(args)  # before any run is read: a wrong --out is the only line
    listed = select_runs(args, paths)
    runs = [r for r in listed if r.status != UNREADABLE]  # unreadable runs are listed, not grouped
    group_keys = args.group_by if args.group_by is not None else varying_keys(runs)
    unknown = [k for k in group_keys if all(k not in r.config for r in runs)]
    if unknown:
        raise UserError(f"--group-by: no run has the config key '{unknown[0]}'")
    dims = dimensions(runs, group_keys)
    groups = group_runs(runs, group_keys)

    listing = runs_table(listed, group_keys)
    evals = evaluations(runs, group_keys)
    metric_columns = [c for c in evals.columns if c not in ("run", "status", GROUP_LABEL, *dims, "seed", DUPLICATE_OF)]
    if metric_columns and args.metric not in metric_columns:  # no columns: no run has evaluated yet
        raise UserError(f"--metric: no metric column '{args.metric}'; columns: {', '.join(metric_columns)}")
    shown = [c for c in ("run", "status", GROUP_LABEL, "seed", DUPLICATE_OF, "test_acc") if c in listing]
    print(listing[shown].astype(object).fillna("—").to_string(index=False, max_colwidth=60))
    settings = settings_table(runs)
    table = summary_table(runs, group_keys, args.metric, args.target)
    markdown = to_markdown(table.drop(columns=dims))
    print("\n" + markdown)

    with writing():
        out.mkdir(parents=True, exist_ok=True)
        if args.csv:
            listing.to_csv(args.csv, index=False)
        evals.to_csv(out / "evaluations.csv", index=False)
        _maybe_parquet(evals, out / "evaluations.parquet")
        listing.to_csv(out / "runs.csv", index=False)
        settings.to_csv(out / "settings.csv", index=False)
        table.to_csv(out / "summary.csv", index=False)
        (out / "summary.md").write_text(markdown + "\n")
        figures = draw_figures(args, out, evals, groups, dims, runs)
        grouped_by = ", ".join(dims) or "nothing (one group)"
        index = write_index(
            out, f"compoptim report: {', '.join(map(str, args.paths))}",
            subtitle=f"{len(listed)} runs in {len(groups)} groups; grouped by {grouped_by}",
            notes=notes(listed, runs, groups, group_keys, args.metric), settings=page_rows(settings),
            varying=[(d, ", ".join(dict.fromkeys(number(g.values[d]) for g in groups))) for d in dims],
            summary=table.drop(columns=dims), explain=EXPLAIN, figures=figures, runs=listing)
    for path in [out / "evaluations.csv", out / "summary.md", out / "settings.csv", *figures, index]:
        print(f"wrote {path}")


def draw_figures(args: argparse.Namespace, out: Path, evals, groups: list[Group], dims: list[str],
                 runs: list[Run]) -> list[Path]:
    """The curves of the runs that count (finished, no duplicates), then compression, topologies, partitions."""
    formats = list(dict.fromkeys(["png", *args.format]))
    encoding = encode(groups, dims)
    counted = evals[(evals["status"] == "finished") & evals[DUPLICATE_OF].isna()]
    figures = []
    simulated = any(r.config.get("network.name", "ideal") != "ideal" for r in runs)
    for name in args.x or [x for x in X_AXES if x != "sim_time" or simulated]:
        column, _, logx, _ = X_AXES[name]
        if _drawable(counted, column, args.metric):
            figures += save(curve_figure(counted, column, args.metric, encoding, logx=logx),
                            out / f"{args.metric}_vs_{name}", formats)
    if _drawable(counted, "epoch", "consensus_distance"):
        figures += save(curve_figure(counted, "epoch", "consensus_distance", encoding, logy=True),
                        out / "consensus_distance_vs_epoch", formats)
    compression = compression_figure(groups, args.metric, encoding)
    if compression is not None:
        figures += save(compression, out / f"final_{args.metric}_vs_compression", formats)
    for stem, spec in load_topologies(runs).items():
        figures.append(draw_topology(spec, out / f"{stem}.png"))
    label_of = {r.path: g.label for g in groups for r in g.members}
    for stem, (spec, users) in load_partitions(runs).items():
        figures += save(label_histogram_figure(spec, _users_title(users, label_of, runs)), out / stem, ["png"])
    return figures


def _drawable(evals, x: str, y: str) -> bool:
    """Whether a curve of ``y`` against ``x`` has a point to draw (no finished run evaluated yet: none)."""
    return x in evals and y in evals and bool((evals[x].notna() & evals[y].notna()).any())


def _users_title(users: Sequence[Path], label_of: dict[Path, str], runs: list[Run]) -> str:
    """Which runs trained on a partition: their groups (or all groups) and seeds."""
    labels = list(dict.fromkeys(label_of[p] for p in users))
    seeds = sorted({str(r.config.get("seed")) for r in runs if r.path in set(users)})
    groups = "all groups" if set(labels) == set(label_of.values()) and len(labels) > 1 else "; ".join(labels)
    return f"{groups}; seed{'s' if len(seeds) > 1 else ''} {','.join(seeds)}"


def _maybe_parquet(frame, path: Path) -> None:
    # pyarrow (or fastparquet) is optional; the CSV always exists
    with contextlib.suppress(ImportError):
        frame.to_parquet(path, index=False)


if __name__ == "__main__":
    main()
