"""One way to write a number, used by summary.md, the console and index.html alike."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import pandas as pd

MISSING = "—"


def number(value: Any, digits: int = 4) -> str:
    """Four significant digits; whole thousands with separators instead of an exponent
    (12,345 rather than 1.234e+04); '—' for a missing value; true/false and null as in YAML."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Integral):
        return str(value)
    if isinstance(value, Real):
        value = float(value)
        if 1e4 <= abs(value) < 1e12:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)


def plus_minus(mean: Any, std: Any, digits: int = 4) -> str:
    """'0.85 ± 0.07071', or the mean alone when there is no spread (one seed)."""
    if isinstance(std, float) and not math.isnan(std) and not (isinstance(mean, float) and math.isnan(mean)):
        return f"{number(mean, digits)} ± {number(std, digits)}"
    return number(mean, digits)


def merge_std(table: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Every cell as text, each '<name> std' column merged into '<name>' as mean ± std."""
    table = table.copy()
    for column in [c for c in table.columns if c.endswith(" std")]:
        base = column[: -len(" std")]
        table[base] = [plus_minus(m, s, digits) for m, s in zip(table[base], table[column])]
        table = table.drop(columns=column)
    for column in table.columns:
        table[column] = [v if isinstance(v, str) else number(v, digits) for v in table[column]]
    return table
