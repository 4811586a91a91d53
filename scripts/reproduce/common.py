"""What every reproduction script shares: its command line, its runs, its page section.

Each script in this folder runs one published comparison through ``compoptim.run`` (the
in-process backend, bit-identical to mpirun) and rewrites its own section of
``docs/reproductions.md``, between ``<!-- begin NAME -->`` and ``<!-- end NAME -->``, with the
table and figure it measured. ``--smoke`` runs every configuration for a few steps and writes
nothing under docs/ unless ``--doc``/``--figures`` point there: CI runs it so no script rots.

A finished run directory is reused when the script runs again with the same overrides
(``--fresh`` retrains), so an interrupted reproduction continues instead of starting over.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import compoptim
import compoptim.errors

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reproductions.md"
FIGURES = ROOT / "docs" / "figures"

log = logging.getLogger("reproduce")

ENDED = ("finished", "diverged")  # statuses that are results


class Reproduction:
    """One script's command line, runs and page section (``name``: the section's marker and
    the default runs folder, ``outputs/reproduce/<name>``)."""

    def __init__(self, name: str, description: str, argv: Sequence[str] | None = None, doc: Path = DOC,
                 script: str | None = None, figure: str | None = None) -> None:
        """``doc``, ``script``, ``figure``: the page, the command and the figure's file name, for
        a script outside this folder (default: docs/reproductions.md, scripts/reproduce/NAME.py,
        reproduce_NAME.png)."""
        parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("--smoke", action="store_true", help="a few steps per configuration (what CI runs)")
        parser.add_argument("--doc", type=Path, default=doc, help="the page whose section is rewritten")
        parser.add_argument("--figures", type=Path, default=FIGURES, help="where the figure is written")
        parser.add_argument("--runs", type=Path, default=None, help="run directories (default outputs/reproduce/NAME)")
        parser.add_argument("--fresh", action="store_true", help="retrain even where a finished run exists")
        self.args = parser.parse_args(argv)
        self.name, self.smoke = name, self.args.smoke
        self.script = script or f"scripts/reproduce/{name}.py"
        self.figure = figure or f"reproduce_{name}.png"
        self.runs = self.args.runs or ROOT / "outputs" / "reproduce" / (name + ("-smoke" if self.smoke else ""))
        self.results: dict[str, compoptim.Result] = {}  # every run this script used, by label
        self.started = time.perf_counter()
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)

    def train(self, label: str, overrides: Sequence[str]) -> compoptim.Result:
        """The run ``overrides`` (backend=local) in ``runs/label``; a run there that ended
        (finished or diverged) with the same overrides is read back instead of retrained. A
        diverged run is a result (its ``summary["status"]`` says so); any other failure raises."""
        result = self.results[label] = self._train(label, overrides)
        return result

    def _train(self, label: str, overrides: Sequence[str]) -> compoptim.Result:
        run_dir = self.runs / label
        overrides = ["backend=local", *overrides]
        summary = run_dir / "summary.json"
        if summary.exists() and not self.args.fresh:
            try:
                recorded = json.loads(summary.read_text())
            except ValueError:
                recorded = {}
            if recorded.get("status") in ENDED and recorded.get("overrides") == overrides:
                log.info(f"[{self.name}] {label}: {recorded['status']} before, read back")
                return compoptim.Result.load(run_dir)
        if run_dir.exists():
            shutil.rmtree(run_dir)  # an unfinished or different run of this script: retrained
        log.info(f"[{self.name}] {label}: {' '.join(overrides)}")
        try:
            return compoptim.run(overrides, run_dir=run_dir)
        except compoptim.errors.UserError as exc:
            if not str(exc).startswith("diverged"):
                raise
            log.info(f"[{self.name}] {label}: {exc}")
            return compoptim.Result.load(run_dir)

    def figure_path(self) -> Path:
        self.args.figures.mkdir(parents=True, exist_ok=True)
        return self.args.figures / self.figure

    def write_section(self, markdown: str) -> None:
        """Replace this script's section of the page (or add it at the end)."""
        doc: Path = self.args.doc
        begin, end = f"<!-- begin {self.name} -->", f"<!-- end {self.name} -->"
        command = f"python {self.script}" + (" --smoke" if self.smoke else "")
        # The runs' own wall times, so a page rewritten from runs read back still says what they cost.
        minutes = sum(wall_time_s(r) for r in self.results.values()) / 60
        runs = f"{len(self.results)} runs, {minutes:.1f} min of training on this machine" if self.results \
            else f"{(time.perf_counter() - self.started) / 60:.1f} min on this machine"
        body = f"{begin}\n{markdown.strip()}\n\n*Written by `{command}` ({runs}).*\n{end}"
        text = doc.read_text() if doc.exists() else "# Reproductions\n"
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            text = head + body + rest.split(end, 1)[1]
        else:
            text = text.rstrip("\n") + "\n\n" + body + "\n"
        doc.parent.mkdir(parents=True, exist_ok=True)
        doc.write_text(text)
        log.info(f"[{self.name}] wrote its section of {doc}")


def final_acc(result: compoptim.Result) -> float:
    """The averaged model's final test accuracy; NaN for a run that did not finish (diverged)."""
    return float(result.summary["test_acc"]) if result.summary.get("status") == "finished" else float("nan")


def wall_time_s(result: compoptim.Result) -> float:
    """The run's wall time (a diverged run: up to its last evaluation)."""
    if result.summary.get("wall_time_s") is not None:
        return float(result.summary["wall_time_s"])
    return float(result.metrics["wall_time_s"].iloc[-1]) if len(result.metrics) else 0.0


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A markdown table; floats as given by the caller (already formatted strings)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def mean_spread(values: Sequence[float], digits: int = 4) -> str:
    """'mean ± sample std (min–max)' over seeds, or the one value."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return (f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f} "
            f"({min(values):.{digits}f}–{max(values):.{digits}f})")


def percent(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.1f}%"
