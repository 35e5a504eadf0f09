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
class DGPOLossConfig(LossConfig):
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


@register("dgpo", DGPOLossConfig)
def dgpo_loss(logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, cfg: DGPOLossConfig) -> tuple[Tensor, dict]:
    """Decoupled gradient policy optimisation.

    Weight (``w = W·π``, W the probability-gradient weight):

    * inside, LP, HN: ``w = r`` (plain PG; no dual-clip);
    * LN: ``w = r^(n+1) / (1−ε_low)^n``, i.e. ``W = (1/π_old)·(r/(1−ε_low))^n → 0`` as π → 0;
    * HP: ``w = (1+ε_high)^(1/m) · r^(1−1/m)``, i.e. ``W = (1/π_old)·((1+ε_high)/r)^(1/m)``.

    Both are continuous at the boundaries (``w = 1∓ε`` there). Forward value ``−Â·w``, which equals the official
    surrogate ``exp(logp + n·sg(logp) − (n+1)·old_logp)/(1−ε_low)^n`` on LN in value and gradient.

    Args:
        logp, old_logp, mask: (B, T). adv: (B,) or (B, T). cfg: :class:`DGPOLossConfig`.

    Returns:
        per_token_loss (B, T), zero on padding; metrics under :data:`dgpo.metrics.OBJECTIVE_METRIC_KEYS`.

    Reference: "From log π to π: Taming Divergence in Soft Clipping via Bilateral Decoupled Decay of Probability
    Gradient Weight", arXiv 2603.14389 (ACL 2026).
    """
    x = prepare(logp, old_logp, adv, mask)
    with torch.no_grad():
        regions = Regions.classify(x.ratio, x.adv, cfg.eps_low, cfg.eps_high)
        # One exp for both boundaries, in log space. On an Â < 0 row only LN can occur, log(w/r) =
        # n·min(log r − log(1−ε_low), 0); on an Â ≥ 0 row only HP, log(w/r) = min(log(1+ε_high) − log r, 0)/m.
        # Both are min(α·log r + β, 0) with (α, β) = (n, −n·log(1−ε_low)) or (−1/m, log(1+ε_high)/m) chosen by the
        # sign of Â: one fused multiply-add, a clamp and an exp over (B, T). Zero inside the trust region, ≤ 0
        # beyond it, so w/r ≤ 1 can never overflow.
        rate = regions.negative * cfg.n - regions.positive / cfg.m
        offset = regions.negative * (-cfg.n * math.log(1.0 - cfg.eps_low))
        offset = offset + regions.positive * (math.log(1.0 + cfg.eps_high) / cfg.m)
        vs_pg = torch.addcmul(offset, x.log_ratio, rate).clamp_max_(0.0).exp_()
        weight = x.ratio * vs_pg
    return assemble(x, weight, regions, weight_vs_pg=vs_pg, scratch=weight)
