"""compoptim-report: tables and figures from run directories.

examples:
  compoptim-report multirun/2026-11-26/10-00-00                 # a sweep -> multirun/.../report/
  compoptim-report outputs/ multirun/ --out report/ --target 0.95
  compoptim-report multirun/x --where optimizer.name=adam --metric test_loss --x bytes
  compoptim-report multirun/x --group-by optimizer.name --format png

Finds every run (a directory with a summary.json) at or below each PATH: single runs, sweep
directories, or folders holding them. Config keys that differ between runs are the grouping
dimensions (the seed is averaged over: mean ± std); --group-by chooses them. Writes into
the output folder:
  evaluations.csv (+ .parquet with pyarrow)  every evaluation of every run, tidy
  summary.csv, summary.md                    per group: final/best metric, final loss, bytes per
                                             node, wall time, and with --target the bytes and
                                             time to reach it
  runs.csv                                   one row per run with its status
  <metric>_vs_<x>.png/.pdf                   curves per group (x: epoch, bytes (log), time)
  consensus_distance_vs_epoch, final_<metric>_vs_compression, topology-<name>-n<N>,
  partition-<name>-n<N> (samples per class on each node)
  index.html                                 all of it on one page
Failed and unfinished runs are listed with their status and left out of the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from compoptim.report import draw_topology, find_runs, load_run, load_summaries, load_topologies, varying_keys
from compoptim.report.figures import X_AXES, curve, final_vs_compression, label_histogram
from compoptim.report.html import write_index
from compoptim.report.runs import load_partitions
from compoptim.report.tables import evaluations, summary_table, to_markdown

FORMATS = ("png", "pdf")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="compoptim-report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path, help="run dirs, sweep dirs or folders holding them")
    parser.add_argument("--out", type=Path, help="output folder (default: FIRST_PATH/report)")
    parser.add_argument("--metric", default="test_acc", help="metric column for curves and summary (default test_acc)")
    parser.add_argument("--x", nargs="+", choices=list(X_AXES), default=list(X_AXES),
                        help="x-axes of the metric curves (default: all)")
    parser.add_argument("--group-by", nargs="+", metavar="KEY",
                        help="config keys to group by, e.g. optimizer.name (default: the keys that vary)")
    parser.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                        help="keep runs whose config KEY equals VALUE (repeatable; 'optimizer' means optimizer.name)")
    parser.add_argument("--target", type=float, help="report bytes and time to reach this metric value")
    parser.add_argument("--format", nargs="+", choices=FORMATS, default=list(FORMATS), help="figure formats")
    parser.add_argument("--csv", type=Path, help="also write the per-run listing to this CSV file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)

    def fail(message: str) -> None:
        print(f"compoptim-report: error: {message}", file=sys.stderr)
        sys.exit(2)

    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        fail(f"no such path: {', '.join(missing)}")
    paths = find_runs(args.paths)
    if not paths:
        fail(f"no runs (no summary.json) under {', '.join(map(str, args.paths))}")
    runs = [load_run(p) for p in paths]
    for condition in args.where:
        key, sep, value = condition.partition("=")
        if not sep:
            fail(f"--where needs KEY=VALUE; got '{condition}'")
        key = key if "." in key or key == "seed" else f"{key}.name"
        runs = [r for r in runs if str(r.config.get(key)) == value]
    if not runs:
        fail(f"no runs match {' and '.join(args.where)}")
    listing = load_summaries([r.path for r in runs])
    runs = [r for r in runs if r.config]  # unreadable runs are listed, not grouped
    if not runs:
        fail("no readable runs (every config.resolved.yaml is missing or corrupt)")
    group_keys = args.group_by if args.group_by is not None else varying_keys(runs)
    unknown = [k for k in group_keys if all(k not in r.config for r in runs)]
    if unknown:
        fail(f"--group-by: no run has the config key '{unknown[0]}'")

    print(listing.to_string(index=False, max_colwidth=60))
    if args.csv:
        listing.to_csv(args.csv, index=False)

    out = args.out or args.paths[0] / "report"
    out.mkdir(parents=True, exist_ok=True)
    evals = evaluations(runs, group_keys)
    if args.metric not in evals:
        fail(f"--metric: no metric column '{args.metric}'; columns: {', '.join(c for c in evals.columns[4:])}")
    evals.to_csv(out / "evaluations.csv", index=False)
    _maybe_parquet(evals, out / "evaluations.parquet")
    listing.to_csv(out / "runs.csv", index=False)
    table = summary_table(runs, group_keys, args.metric, args.target)
    table.to_csv(out / "summary.csv", index=False)
    markdown = to_markdown(table.drop(columns=group_keys))
    (out / "summary.md").write_text(markdown + "\n")
    print("\n" + markdown)

    finished = evals[evals["status"] == "finished"]
    figures = []
    for name in args.x:
        column, _, logx = X_AXES[name]
        figures += curve(finished, column, args.metric, out / f"{args.metric}_vs_{name}", args.format, logx=logx)
    figures += curve(finished, "epoch", "consensus_distance", out / "consensus_distance_vs_epoch", args.format,
                     logy=True)
    figures += final_vs_compression(runs, group_keys, args.metric, out / f"final_{args.metric}_vs_compression",
                                    args.format)
    for stem, spec in load_topologies([r.path for r in runs]).items():
        figures.append(draw_topology(spec, out / f"{stem}.png"))
    for stem, spec in load_partitions([r.path for r in runs]).items():
        figures += label_histogram(spec, out / stem, ["png"])
    notes = [f"{len(runs)} runs, grouped by: {', '.join(group_keys) or 'nothing (one group)'}; seeds averaged",
             *[f"{r.path}: {r.status}{f' ({r.error})' if r.error else ''}" for r in runs if r.status != "finished"]]
    index = write_index(out, f"compoptim report: {', '.join(map(str, args.paths))}", table, listing, figures, notes)
    for path in [out / "evaluations.csv", out / "summary.md", *figures, index]:
        print(f"wrote {path}")


def _maybe_parquet(frame, path: Path) -> None:
    # pyarrow (or fastparquet) is optional; the CSV always exists
    with contextlib.suppress(ImportError):
        frame.to_parquet(path, index=False)


if __name__ == "__main__":
    main()
