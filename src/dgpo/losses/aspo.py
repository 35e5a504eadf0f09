"""ASPO: asymmetric importance sampling — positive-advantage tokens are weighted by the flipped ratio 1/r."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dgpo.losses.config import LossConfig
from dgpo.losses.core import Regions, decoupled_surrogate, prepare
from dgpo.losses.registry import register
from dgpo.losses.terms import ObjectiveTerms


@dataclass(frozen=True)
class ASPOLossConfig(LossConfig):
    """ASPO: hard clip on LN/HP, soft cap ``dual_clip_c`` on the flipped weight of LP and the weight of HN."""

    eps_low: float = 0.2
    eps_high: float = 0.2
    dual_clip_c: float = 3.0

    def validate(self) -> None:
        if self.dual_clip_c is None:
            self._fail("dual_clip_c", "> 1 + eps_high (ASPO always caps)")
        self._check_trust_region()


@register("aspo", ASPOLossConfig)
def aspo_loss(
    logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, cfg: ASPOLossConfig
) -> tuple[Tensor, ObjectiveTerms]:
    """Asymmetric importance-sampling policy optimisation.

    Weight (regions decided on r and the sign of Â):

    * inside: ``w = 1/r`` for Â > 0, ``w = r`` for Â < 0;
    * LN and HP: ``w = 0`` (hard clip);
    * LP: ``w = min(1/r, c)``; HN: ``w = min(r, c)`` (a soft cap, not a cut to 0).

    Forward value ``−Â·sg(w)·log π`` (only the gradient ``−Â·w`` is the contract).

    Args:
        logp, old_logp, mask: (B, T). adv: (B,) or (B, T). cfg: :class:`ASPOLossConfig`.

    Returns:
        per_token_loss (B, T), zero on padding; its :class:`ObjectiveTerms` (the metrics, on request).

    Reference: ASPO, arXiv 2510.06062.
    Readable reference: :func:`dgpo.losses.reference.aspo`.
    """
    x = prepare(logp, old_logp, adv, mask)  # checked inputs; x.ratio = r
    with torch.no_grad():
        r = x.ratio  # (B, T)
        c = cfg.dual_clip_c
        regions = Regions.classify(r, x.adv, cfg.eps_low, cfg.eps_high)
        flipped = torch.where(x.adv > 0, 1 / r, r)  # (B, T): the flipped ratio 1/r for good tokens, r for bad
        weight = regions.table(
            inside=flipped,
            ln=0.0,  # hard clip
            hp=0.0,  # hard clip
            lp=(1 / r).clamp(max=c),  # Â > 0: the flipped ratio, soft-capped at c
            hn=r.clamp(max=c),  # Â < 0: soft-capped at c
        )  # (B, T)
        value = -x.adv * weight * x.logp_values()  # (B, T): −Â·sg(w)·log π
    per_token_loss = decoupled_surrogate(x, weight, value)  # (B, T)
    return per_token_loss, ObjectiveTerms(x, weight, regions)
