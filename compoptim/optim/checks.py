"""Range checks with one-line messages naming the config key."""

from __future__ import annotations

from compoptim.errors import UserError


def check_range(key: str, value: float, low: float, high: float | None = None,
                low_open: bool = False, high_open: bool = True) -> float:
    """Raise a UserError naming ``key`` unless low <= value (< or <=) high."""
    above = value > low if low_open else value >= low
    below = high is None or (value < high if high_open else value <= high)
    if above and below:
        return float(value)
    lower = f"> {low:g}" if low_open else f">= {low:g}"
    upper = "" if high is None else (f" and < {high:g}" if high_open else f" and <= {high:g}")
    raise UserError(f"{key} must be {lower}{upper}; got {value:g}")
