"""ASPO: asymmetric importance sampling — positive-advantage tokens are weighted by the flipped ratio 1/r."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dgpo.losses.base import assemble
from dgpo.losses.config import LossConfig
from dgpo.losses.inputs import prepare
from dgpo.losses.regions import Regions
from dgpo.losses.registry import register


@dataclass(frozen=True)
class ASPOLossConfig(LossConfig):
    """ASPO: hard clip on LN/HP, soft cap ``dual_clip_c`` on the flipped weight of LP and the weight of HN."""

    eps_low: float = 0.2
    eps_high: float = 0.2
    dual_clip_c: float = 3.0

    def validate(self) -> None:
        if self.dual_clip_c is None:
            raise ValueError("ASPOLossConfig.dual_clip_c must be > 1 + eps_high (ASPO always caps), got None")
        self._check_trust_region()


@register("aspo", ASPOLossConfig)
def aspo_loss(logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, cfg: ASPOLossConfig) -> tuple[Tensor, dict]:
    """Asymmetric importance-sampling policy optimisation.

    Weight (regions decided on r and the sign of Â):

    * inside: ``w = 1/r`` for Â > 0, ``w = r`` for Â < 0;
    * LN and HP: ``w = 0`` (hard clip);
    * LP: ``w = min(1/r, c)``; HN: ``w = min(r, c)`` (a soft cap, not a cut to 0).

    Forward value ``−Â·sg(w)·log π`` (only the gradient ``−Â·w`` is the contract).

    Args:
        logp, old_logp, mask: (B, T). adv: (B,) or (B, T). cfg: :class:`ASPOLossConfig`.

    Returns:
        per_token_loss (B, T), zero on padding; metrics under :data:`dgpo.metrics.OBJECTIVE_METRIC_KEYS`.

    Reference: ASPO, arXiv 2510.06062.
    """
    x = prepare(logp, old_logp, adv, mask)
    with torch.no_grad():
        regions = Regions.classify(x.ratio, x.adv, cfg.eps_low, cfg.eps_high)
        # 1/r on Â ≥ 0 rows, r on Â < 0 rows (products with 0/1 indicators, exact).
        base = torch.reciprocal(x.ratio).mul_(regions.positive).addcmul_(x.ratio, regions.negative)
        # side·sign(Â) is +1 on LN/HP (cut to 0), −1 on LP/HN (capped at c) and 0 inside (the base weight).
        signed = torch.mul(regions.side, regions.adv_sign)
        capped = base.clamp(max=cfg.dual_clip_c).mul_(torch.neg(signed).relu_())
        weight = base.mul_(signed.abs_().neg_().add_(1.0)).add_(capped)
        value = (x.adv * weight).mul_(x.logp_values()).neg_()
    return assemble(x, weight, regions, value=value, scratch=weight)
