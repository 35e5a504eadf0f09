"""One range check for every numeric setting, from the CLI and from config files alike."""

from __future__ import annotations

import math


def check_range(
    name: str, value: float | None, low: float, high: float | None = None, *, open_low: bool = False, flag: str = ""
) -> None:
    """Raise ``ValueError("top_p must be in (0, 1], got 0.0 (--top-p)")`` when ``value`` is out of range.

    The range is ``[low, high]`` (``(low, high]`` with ``open_low``; no upper bound when ``high`` is None). None
    means "not set" and passes; NaN fails every range. ``flag`` names the CLI option the value came from, if any.
    """
    if value is None:
        return
    finite = math.isfinite(value)  # inf passes every lower bound: `--lr inf` would train until the first NaN
    if finite and (value > low if open_low else value >= low) and (high is None or value <= high):
        return
    if high is not None:
        rule = f"in {'(' if open_low else '['}{low:g}, {high:g}]"
    else:
        rule = f"{'>' if open_low else '>='} {low:g}"
    if not finite:
        rule = f"a finite number {rule}"
    raise ValueError(f"{name} must be {rule}, got {value}" + (f" ({flag})" if flag else ""))
