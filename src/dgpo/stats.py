"""Mean and Student-t confidence interval for a handful of seeds, and the paired form of it."""

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


@dataclass(frozen=True)
class PairedDifference:
    """Differences ``arm − baseline`` over seeds that share everything but the arm (same warm start and data).

    Pairing removes the seed-to-seed variance both arms share (e.g. a stronger warm start lifts both), so the
    interval is on the differences themselves: mean ± t_{0.975, n−1}·s_d/√n.
    """

    interval: Interval
    wins: int
    losses: int

    @property
    def n(self) -> int:
        return self.interval.n

    def format(self, scale: float = 100.0, digits: int = 1) -> str:
        sign = "+" if self.interval.mean >= 0 else ""
        return f"{sign}{self.interval.format(scale, digits)}"

    def resolved(self) -> bool:
        """The 95% interval excludes 0 (a difference this data supports)."""
        i = self.interval
        return not math.isnan(i.half_width) and (i.low > 0 or i.high < 0)


def paired_difference(values: Sequence[float], baseline: Sequence[float]) -> PairedDifference:
    """Paired t-interval of ``values[i] − baseline[i]``, with wins (> 0) and losses (< 0) out of n."""
    if len(values) != len(baseline):
        raise ValueError(f"paired values need equal lengths, got {len(values)} and {len(baseline)}")
    differences = [v - b for v, b in zip(values, baseline, strict=True)]
    return PairedDifference(
        t_interval(differences), wins=sum(d > 0 for d in differences), losses=sum(d < 0 for d in differences)
    )
