"""The one exception type for mistakes a user can fix (bad config values, missing files),
and the range check that raises it.

The CLI prints these as a single line, without a traceback; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(ValueError):
    """A problem with the user's input; its message says what is wrong and what is allowed."""


def check_range(key: str, value: float, low: float, high: float | None = None,
                low_open: bool = False, high_open: bool = True) -> float:
    """``value`` as a float if low <= value (< or <=) high, else a UserError naming ``key``."""
    above = value > low if low_open else value >= low
    below = high is None or (value < high if high_open else value <= high)
    if above and below:
        return float(value)
    lower = f"> {low:g}" if low_open else f">= {low:g}"
    upper = "" if high is None else (f" and < {high:g}" if high_open else f" and <= {high:g}")
    raise UserError(f"{key} must be {lower}{upper}; got {value:g}")


def unknown_choice(what: str, value: object, allowed: Iterable[str]) -> str:
    """``unknown <what> 'x'; available: a, b; did you mean 'b'?`` (the suggestion when one is close)."""
    allowed = sorted(allowed)
    close = difflib.get_close_matches(str(value), allowed, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown {what} '{value}'; available: {', '.join(allowed)}{hint}"
