"""GSPO: clipping on the sequence-level (length-normalised) ratio, in its token form."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dgpo.losses.config import LossConfig
from dgpo.losses.core import Regions, clipped_value, decoupled_surrogate, prepare
from dgpo.losses.registry import register
from dgpo.losses.terms import ObjectiveTerms


@dataclass(frozen=True)
class GSPOLossConfig(LossConfig):
    """GSPO's trust region is tiny because the sequence ratio is a geometric mean (paper: 3e-4 / 4e-4)."""

    eps_low: float = 3e-4
    eps_high: float = 4e-4

    def validate(self) -> None:
        self._check_trust_region()


@register("gspo", GSPOLossConfig)
def gspo_loss(
    logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, cfg: GSPOLossConfig
) -> tuple[Tensor, ObjectiveTerms]:
    """Group sequence policy optimisation (GSPO-token form).

    Formula: ``s = exp(masked mean over the sequence of log r)``, the same for every token of a sequence, used as
    the token ratio ``s_t = sg(s)·π_t/sg(π_t)``; ``loss = −min(s_t·Â, clip(s_t)·Â)`` per token. Regions are decided
    on ``s``; weight ``w = s`` except ``w = 0`` where s is clipped (LN, HP). Meant for ``seq-mean-token-mean``.

    Args:
        logp, old_logp, mask: (B, T). adv: (B,) or (B, T). cfg: :class:`GSPOLossConfig`.

    Returns:
        per_token_loss (B, T), zero on padding; its :class:`ObjectiveTerms` (the metrics, on request)
        (``ratio/*`` report s).

    Reference: GSPO, Zheng et al. 2025, arXiv 2507.18071.
    Readable reference: :func:`dgpo.losses.reference.gspo`.
    """
    x = prepare(logp, old_logp, adv, mask)  # checked inputs; x.log_ratio is 0 on padding
    with torch.no_grad():
        # s = exp(masked mean of log r); padding holds log r = 0, so the plain sum is the masked sum.
        seq_ratio = torch.exp(x.log_ratio.sum(dim=1, keepdim=True) / x.row_tokens.clamp_min(1))  # (B, 1)
        regions = Regions.classify(seq_ratio, x.adv, cfg.eps_low, cfg.eps_high)  # decided on s
        weight = regions.table(inside=seq_ratio, ln=0.0, hp=0.0, lp=seq_ratio, hn=seq_ratio)  # w = s, 0 if clipped
        value = clipped_value(seq_ratio, x.adv, cfg.eps_low, cfg.eps_high, None)  # each token's value
    per_token_loss = decoupled_surrogate(x, weight, value)  # (B, T)
    return per_token_loss, ObjectiveTerms(x, weight, regions, region_ratio=seq_ratio)
