"""DGPO: bilateral decoupled decay of the probability-gradient weight (the paper's objective)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from dgpo.losses.base import assemble
from dgpo.losses.config import LossConfig
from dgpo.losses.inputs import prepare
from dgpo.losses.regions import Regions
from dgpo.losses.registry import register


@dataclass(frozen=True)
class DGPOConfig(LossConfig):
    """DGPO decay exponents: ``n`` on the left boundary (LN), ``m`` on the right (HP).

    The paper finds (n, m) = (1, 2) robust and uses (2, 2) for 1.5B models; m = 1 makes HP equal to GPPO's.
    """

    n: float = 1.0
    m: float = 2.0
    eps_low: float = 0.2
    eps_high: float = 0.2

    def validate(self) -> None:
        self._check_positive("n", "m")
        self._check_trust_region()


@register("dgpo", DGPOConfig)
def dgpo_loss(logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, cfg: DGPOConfig) -> tuple[Tensor, dict]:
    """Decoupled gradient policy optimisation.

    Weight (``w = W·π``, W the probability-gradient weight):

    * inside, LP, HN: ``w = r`` (plain PG; no dual-clip);
    * LN: ``w = r^(n+1) / (1−ε_low)^n``, i.e. ``W = (1/π_old)·(r/(1−ε_low))^n → 0`` as π → 0;
    * HP: ``w = (1+ε_high)^(1/m) · r^(1−1/m)``, i.e. ``W = (1/π_old)·((1+ε_high)/r)^(1/m)``.

    Both are continuous at the boundaries (``w = 1∓ε`` there). Forward value ``−Â·w``, which equals the official
    surrogate ``exp(logp + n·sg(logp) − (n+1)·old_logp)/(1−ε_low)^n`` on LN in value and gradient.

    Args:
        logp, old_logp, mask: (B, T). adv: (B,) or (B, T). cfg: :class:`DGPOConfig`.

    Returns:
        per_token_loss (B, T), zero on padding; metrics under :data:`dgpo.metrics.OBJECTIVE_METRIC_KEYS`.

    Reference: "From log π to π: Taming Divergence in Soft Clipping via Bilateral Decoupled Decay of Probability
    Gradient Weight", arXiv 2603.14389 (ACL 2026).
    """
    x = prepare(logp, old_logp, adv, mask)
    with torch.no_grad():
        regions = Regions.classify(x.ratio, x.adv, cfg.eps_low, cfg.eps_high)
        # One exp for both boundaries, in log space: log(w/r) = n·min(log r − log(1−ε_low), 0) on Â < 0 rows
        # plus min(log(1+ε_high) − log r, 0)/m on Â ≥ 0 rows. Each min is nonzero only beyond its boundary, so
        # this is log(w/r) of LN and HP and 0 elsewhere; w/r ≤ 1 can never overflow.
        below_gap = (x.log_ratio - math.log(1.0 - cfg.eps_low)).clamp_max_(0.0)
        above_gap = torch.rsub(x.log_ratio, math.log(1.0 + cfg.eps_high)).clamp_max_(0.0)
        vs_pg = below_gap.mul_(cfg.n * regions.negative).add_(above_gap.mul_(regions.positive / cfg.m)).exp_()
        # Reuse a buffer: on CPU each fresh (B, T) tensor costs page faults (docs/benchmarks.md).
        weight = torch.mul(x.ratio, vs_pg, out=above_gap)
    return assemble(x, weight, regions, weight_vs_pg=vs_pg, scratch=weight)
