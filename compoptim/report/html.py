"""index.html: the report's tables and figures on one page."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import pandas as pd


def write_index(out: Path, title: str, summary: pd.DataFrame, runs: pd.DataFrame, figures: Sequence[Path],
                notes: Sequence[str] = ()) -> Path:
    images = "\n".join(
        f'<figure><img src="{html.escape(p.name)}" alt="{html.escape(p.stem)}"><figcaption>{html.escape(p.stem)}'
        f"</figcaption></figure>" for p in figures if p.suffix == ".png")
    notes_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }} table {{ border-collapse: collapse; font-size: 13px; }}
td, th {{ border: 1px solid #ccc; padding: 3px 6px; text-align: right; }} th {{ background: #f3f3f3; }}
figure {{ display: inline-block; margin: 8px; }} img {{ max-width: 640px; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<ul>{notes_html}</ul>
<h2>Summary (per group, mean over seeds)</h2>
{summary.to_html(index=False, na_rep="—", float_format=lambda v: f"{v:.4g}")}
<h2>Figures</h2>
{images}
<h2>Runs</h2>
{runs.to_html(index=False, na_rep="—", float_format=lambda v: f"{v:.4g}")}
</body></html>
"""
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
