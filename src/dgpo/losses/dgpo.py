"""DGPO: bilateral decoupled decay of the probability-gradient weight (the paper's objective)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dgpo.losses.config import LossConfig
from dgpo.losses.core import Regions, decoupled_surrogate, prepare
from dgpo.losses.registry import register
from dgpo.losses.terms import ObjectiveTerms


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
def dgpo_loss(
    logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, cfg: DGPOLossConfig
) -> tuple[Tensor, ObjectiveTerms]:
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
        per_token_loss (B, T), zero on padding; its :class:`ObjectiveTerms` (the metrics, on request).

    Reference: "From log π to π: Taming Divergence in Soft Clipping via Bilateral Decoupled Decay of Probability
    Gradient Weight", arXiv 2603.14389 (ACL 2026). Readable reference (the official surrogate, autograd):
    :func:`dgpo.losses.reference.dgpo`.
    """
    x = prepare(logp, old_logp, adv, mask)  # checked inputs; x.ratio = r = exp(clamp(logp − old_logp, ±20))
    with torch.no_grad():
        r = x.ratio  # (B, T)
        low, high, n, m = 1 - cfg.eps_low, 1 + cfg.eps_high, cfg.n, cfg.m
        regions = Regions.classify(r, x.adv, cfg.eps_low, cfg.eps_high)
        # The paper's table (§3): each region's gradient weight w = W·π, W the probability-gradient weight.
        weight = regions.table(
            inside=r,
            ln=r.pow(n + 1) / low**n,  # W = (1/π_old)·(r/(1−ε_low))^n → 0 as π → 0: the LN divergence removed
            hp=high ** (1 / m) * r.pow(1 - 1 / m),  # W = (1/π_old)·((1+ε_high)/r)^(1/m): HP decays, not cut
            lp=r,  # plain PG: no dual-clip
            hn=r,
        )  # (B, T); continuous at both boundaries (w = 1∓ε there)
    per_token_loss = decoupled_surrogate(x, weight)  # (B, T): value −Â·w, gradient −Â·w
    return per_token_loss, ObjectiveTerms(x, weight, regions)
