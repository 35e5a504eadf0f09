"""GSPO: clipping on the sequence-level (length-normalised) ratio, in its token form."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dgpo.losses.base import assemble, clipped_value
from dgpo.losses.config import LossConfig
from dgpo.losses.inputs import prepare
from dgpo.losses.regions import Regions
from dgpo.losses.registry import register


@dataclass(frozen=True)
class GSPOLossConfig(LossConfig):
    """GSPO's trust region is tiny because the sequence ratio is a geometric mean (paper: 3e-4 / 4e-4)."""

    eps_low: float = 3e-4
    eps_high: float = 4e-4

    def validate(self) -> None:
        self._check_trust_region()


@register("gspo", GSPOLossConfig)
def gspo_loss(logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, cfg: GSPOLossConfig) -> tuple[Tensor, dict]:
    """Group sequence policy optimisation (GSPO-token form).

    Formula: ``s = exp(masked mean over the sequence of log r)``, the same for every token of a sequence, used as
    the token ratio ``s_t = sg(s)·π_t/sg(π_t)``; ``loss = −min(s_t·Â, clip(s_t)·Â)`` per token. Regions are decided
    on ``s``; weight ``w = s`` except ``w = 0`` where s is clipped (LN, HP). Meant for ``seq-mean-token-mean``.

    Args:
        logp, old_logp, mask: (B, T). adv: (B,) or (B, T). cfg: :class:`GSPOLossConfig`.

    Returns:
        per_token_loss (B, T), zero on padding; metrics under :data:`dgpo.metrics.OBJECTIVE_METRIC_KEYS`
        (``ratio/*`` report s).

    Reference: GSPO, Zheng et al. 2025, arXiv 2507.18071.
    """
    x = prepare(logp, old_logp, adv, mask)
    with torch.no_grad():
        # Padding holds log r = 0 after prepare(), so a plain sum is the masked sum. s is (B, 1).
        seq_ratio = torch.exp(x.log_ratio.sum(dim=1, keepdim=True) / x.row_tokens.clamp_min(1))
        regions = Regions.classify(seq_ratio, x.adv, cfg.eps_low, cfg.eps_high)
        weight = seq_ratio * regions.kept()
        value = clipped_value(seq_ratio, x.adv, cfg.eps_low, cfg.eps_high, None)
    return assemble(x, weight, regions, value=value, region_ratio=seq_ratio)
