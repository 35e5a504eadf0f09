"""Mean and Student-t confidence interval for a handful of seeds."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

#: Two-sided 95% Student-t critical values t_{0.975, df} for df = 1..30 (standard tables). Written out because
#: the only other source would be scipy, a heavy dependency for 30 constants; df > 30 uses the normal 1.960.
T_975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


@dataclass(frozen=True)
class Interval:
    mean: float
    half_width: float  # NaN with a single value (no spread to estimate)
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def overlaps(self, other: Interval) -> bool:
        if math.isnan(self.half_width) or math.isnan(other.half_width):
            return True  # unknown spread: never claim a difference
        return self.low <= other.high and other.low <= self.high

    def format(self, scale: float = 100.0, digits: int = 1) -> str:
        if math.isnan(self.half_width):
            return f"{scale * self.mean:.{digits}f} (n=1)"
        return f"{scale * self.mean:.{digits}f} ± {scale * self.half_width:.{digits}f}"


def t_interval(values: Sequence[float]) -> Interval:
    """mean ± t_{0.975, n−1} · s/√n, with s the sample standard deviation."""
    if not values:
        raise ValueError("need at least one value")
    n = len(values)
    mean = statistics.fmean(values)
    if n == 1:
        return Interval(mean, float("nan"), 1)
    critical = T_975[n - 2] if n - 1 <= len(T_975) else 1.960
    return Interval(mean, critical * statistics.stdev(values) / math.sqrt(n), n)
