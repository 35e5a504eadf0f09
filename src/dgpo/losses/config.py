"""Base class and range checks for the objectives' frozen config dataclasses.

Each objective has exactly one config dataclass; it is the only place its defaults live, and its
``__post_init__`` rejects out-of-range values with an error naming the field and the allowed range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from dgpo.ranges import SettingError


@dataclass(frozen=True)
class LossConfig:
    """Base of every objective config. Subclasses add fields and extend :meth:`validate`."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{type(self).__name__}.{f.name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise SettingError(f.name, f"{type(self).__name__}.{f.name} must be finite, got {value!r}")
        self.validate()

    def validate(self) -> None:
        """Check ranges; the base config has no fields."""

    def _fail(self, name: str, allowed: str) -> None:
        raise SettingError(name, f"{type(self).__name__}.{name} must be {allowed}, got {getattr(self, name)!r}")

    def _check_positive(self, *names: str) -> None:
        for name in names:
            if not getattr(self, name) > 0:
                self._fail(name, "> 0")

    def _check_eps_low(self) -> None:
        # 1 − eps_low is the lower trust-region bound on a positive ratio, so eps_low must lie in (0, 1).
        if not 0 < self.eps_low < 1:
            self._fail("eps_low", "in (0, 1)")

    def _check_trust_region(self) -> None:
        """The common clipping ranges: eps_low in (0, 1), eps_high > 0, and dual_clip_c when the config has one."""
        self._check_eps_low()
        self._check_positive("eps_high")
        if hasattr(self, "dual_clip_c"):
            self._check_dual_clip()

    def _check_dual_clip(self) -> None:
        # Dual-clip must sit above the upper trust-region bound, otherwise it would cut inside the region.
        c = self.dual_clip_c
        if c is not None and not c > 1 + self.eps_high:
            raise SettingError(
                "dual_clip_c",
                f"{type(self).__name__}.dual_clip_c must be > 1 + eps_high = {1 + self.eps_high:g} or None, got {c!r}",
            )


def parameter_names(config_cls: type[LossConfig]) -> list[str]:
    """The field names of a config dataclass, in declaration order."""
    return [f.name for f in fields(config_cls)]
