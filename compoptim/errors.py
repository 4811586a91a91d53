"""The one exception type for mistakes a user can fix (bad config values, missing files),
the range check that raises it, and the check that a number can be held at all.

The CLI prints these as a single line, without a traceback; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable

# The numbers a setting can hold: every float setting meets float32 tensors (the models'
# dtype), every int one torch's and numpy's int64. A value outside cannot work, however it
# compares with a setting's own range: lr=inf passes "> 0"; seed=2**70 overflows torch.
FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_SMALLEST = 1.401298464324817e-45  # the smallest positive float32 (subnormal): below it, 0
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class UserError(ValueError):
    """A problem with the user's input; its message says what is wrong and what is allowed."""


class AgreedExit(SystemExit):
    """Every rank reached the same verdict and exits alike, so no abort is needed."""


class JobNotFinished(Exception):
    """A sweep's job that ended without finishing (its one line already printed): Hydra
    records the job as failed and the sweep goes on to the next job."""


def check_number(key: str, value: object) -> object:
    """``value`` unchanged if it is not a number, or a number every layer can hold: a float
    finite, at most float32's largest and not so small that float32 rounds it to 0; an int
    within int64. Else a UserError naming ``key`` (the setting's full name)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise UserError(f"{key} must fit in 64 bits ({INT64_MIN} .. {INT64_MAX}); got {value}")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise UserError(f"{key} must be a finite number; got {value}")
        if abs(value) > FLOAT32_MAX:
            raise UserError(f"{key} must be at most {FLOAT32_MAX:.4g} in magnitude (float32); got {value:g}")
        if 0 < abs(value) < FLOAT32_SMALLEST:
            raise UserError(f"{key} must be 0 or at least {FLOAT32_SMALLEST:.4g} in magnitude (float32 rounds it "
                            f"to 0); got {value:g}")
    return value


def check_range(key: str, value: float, low: float, high: float | None = None,
                low_open: bool = False, high_open: bool = True) -> float:
    """``value`` as a float if it is a number (``check_number``) and low <= value (< or <=)
    high, else a UserError naming ``key``."""
    check_number(key, value)
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
