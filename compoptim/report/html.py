"""index.html: what the experiment is, the per-group summary, the figures and every run, on one page.
Links to run files are relative to the page, so a report folder inside the runs' tree can be moved with it."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from compoptim.report.formatting import MISSING, merge_std
from compoptim.report.grouping import FACTS
from compoptim.report.listing import run_files
from compoptim.report.tables import DUPLICATE_OF, GROUP_LABEL

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em 2em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
.sub, .explain { color: #555; font-size: 13px; } ul.notes { font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: 0.4em 0; }
td, th { border: 1px solid #ddd; padding: 3px 5px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } tr:nth-child(even) td { background: #fafafa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.runs td { white-space: nowrap; }
figure { display: inline-block; margin: 6px; vertical-align: top; } img { max-width: 640px; }
figcaption { font-size: 12px; color: #555; }
"""


def write_index(out: Path, title: str, *, subtitle: str, notes: Sequence[str], settings: Sequence[tuple[str, str]],
                varying: Sequence[tuple[str, str]], summary: pd.DataFrame, explain: str, figures: Sequence[Path],
                runs: pd.DataFrame) -> Path:
    images = "\n".join(f'<figure><img src="{html.escape(p.name)}" alt="{html.escape(p.stem)}">'
                       f"<figcaption>{html.escape(p.stem)}</figcaption></figure>"
                       for p in figures if p.suffix == ".png")
    varying_html = _table(pd.DataFrame(varying, columns=["varies between groups", "values"])) if varying else \
        '<p class="explain">Nothing varies but the seed: all runs form one group.</p>'
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="sub">{html.escape(subtitle)}</p>
<ul class="notes">{"".join(f"<li>{html.escape(n)}</li>" for n in notes)}</ul>
<h2>Experiment</h2>
{_table(pd.DataFrame(settings, columns=["shared by all runs", "settings"]), numbers=False)}
{varying_html}
<h2>Summary per group</h2>
<p class="explain">{html.escape(explain)}</p>
{_table(merge_std(summary))}
<h2>Figures</h2>
{images}
<h2>Runs</h2>
{_table(_runs_view(runs, out), raw=("run", "files"), css="runs")}
</body></html>
"""
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _runs_view(runs: pd.DataFrame, out: Path) -> pd.DataFrame:
    """The listing for reading: short run names linked to their folder, the error in the status,
    the counted run a duplicate repeats, links to the run's files."""
    paths = [Path(p) for p in runs["run"]]
    base = Path(os.path.commonpath([p.resolve() for p in paths])).parent if paths else Path()

    def name(path: str | None) -> str | None:
        return None if not isinstance(path, str) else os.path.relpath(Path(path).resolve(), base)

    view = merge_std(runs.drop(columns=[GROUP_LABEL, "error", "run", DUPLICATE_OF]))
    view.insert(0, "run", [_link(os.path.relpath(p, out), name(str(p))) for p in paths])
    view["status"] = [s if not isinstance(e, str) else f"{s} ({e})" for s, e in zip(runs["status"], runs["error"])]
    view["started_at"] = [t[:19].replace("T", " ") if isinstance(t, str) else MISSING for t in runs["started_at"]]
    view.insert(len(view.columns), "duplicate of", [name(d) or MISSING for d in runs[DUPLICATE_OF]])
    view["files"] = [" ".join(_link(os.path.relpath(f, out), label) for label, f in run_files(p).items())
                     for p in paths]
    # A fact every run shares is in the Experiment table; a column no run has says nothing.
    return view[[c for c in view.columns if (view[c] != MISSING).any() and not (c in FACTS and view[c].nunique() == 1)]]


def _link(href: str, text: str) -> str:
    return f'<a href="{html.escape(Path(href).as_posix())}">{html.escape(text)}</a>'


def _table(frame: pd.DataFrame, raw: Sequence[str] = (), numbers: bool = True, css: str = "") -> str:
    """An HTML table of text cells; columns in ``raw`` are HTML already; numbers align right (with ``numbers``)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for column, cell in zip(frame.columns, row):
            text = str(cell) if column in raw else html.escape(str(cell))
            cells.append(f'<td class="num">{text}</td>' if numbers and _numeric(str(cell)) else f"<td>{text}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _numeric(text: str) -> bool:
    head = text.split(" ± ")[0].replace(",", "")
    try:
        float(head)
    except ValueError:
        return text == MISSING
    return True

