"""One range check for every numeric setting. The config dataclasses call it on their own values, so a config file,
a CLI flag and a direct call meet the same check and message; the CLI only adds the flag's name."""

from __future__ import annotations

import math
from typing import Any


class SettingError(ValueError):
    """A setting out of its range; ``name`` is the setting's key (``rl.max_steps``), so a caller that knows where
    the value came from (a config file, a flag) can say so."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name


class NonFiniteError(ValueError):
    """NaN or Inf where finite values are required: an objective's inputs on active tokens, a batch's rewards. In
    training it means the run diverged (:func:`dgpo.train.rl.train_rl` says so, with the settings to look at)."""


def check_range(
    name: str, value: float | None, low: float, high: float | None = None, *, open_low: bool = False
) -> None:
    """Raise ``ValueError("top_p must be in (0, 1], got 0.0")`` when ``value`` is out of range.

    The range is ``[low, high]`` (``(low, high]`` with ``open_low``; no upper bound when ``high`` is None). None
    means "not set" and passes; NaN fails every range.
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
    raise SettingError(name, f"{name} must be {rule}, got {value}")


def check_ranges(section: str, cfg: Any, **rules: str) -> None:
    """Check fields of the dataclass ``cfg`` against rules such as ``max_steps=">= 1"`` or ``learning_rate="> 0"``
    (:func:`check_range` for each; None passes); messages name the config key: ``rl.max_steps must be >= 1, got 0``.
    """
    for name, rule in rules.items():
        op, bound = rule.split()
        check_range(f"{section}.{name}", getattr(cfg, name), float(bound), open_low={">=": False, ">": True}[op])
