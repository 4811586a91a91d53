"""compoptim-report: a table of the runs found under the given directories.

    compoptim-report outputs/ multirun/2026-11-26/10-00-00
    compoptim-report multirun/2026-11-26/10-00-00 --out figures/

Finds every run directory (one with a summary.json) at or below each path, prints one row
per run with its status and final figures, and draws each distinct topology of the runs
into the output folder (topology-<name>-n<N>.png; default: the first path's report/).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from compoptim.report import draw_topology, find_runs, load_summaries, load_topologies


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="compoptim-report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path, help="run dirs, sweep dirs or folders holding them")
    parser.add_argument("--csv", type=Path, help="also write the table to this CSV file")
    parser.add_argument("--out", type=Path, help="folder for the figures (default: FIRST_PATH/report)")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        parser.exit(2, f"compoptim-report: error: no such path: {', '.join(missing)}\n")
    runs = find_runs(args.paths)
    if not runs:
        parser.exit(2, f"compoptim-report: error: no runs (no summary.json) under {', '.join(map(str, args.paths))}\n")
    table = load_summaries(runs)
    with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 60):
        print(table.to_string(index=False))
    if args.csv:
        table.to_csv(args.csv, index=False)
    out = args.out or args.paths[0] / "report"
    for stem, spec in load_topologies(runs).items():
        print(f"wrote {draw_topology(spec, out / f'{stem}.png')}")


if __name__ == "__main__":
    main()
