"""Plain policy gradient and hard clipping: ``pg``, ``grpo`` (PPO-clip), ``dapo`` (clip-higher)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dgpo.losses.config import LossConfig
from dgpo.losses.core import Regions, clipped_value, decoupled_surrogate, prepare
from dgpo.losses.registry import register
from dgpo.losses.terms import ObjectiveTerms
from dgpo.metrics import DIAGNOSTIC_EPS


@dataclass(frozen=True)
class PGLossConfig(LossConfig):
    """``pg`` has no parameters."""


@dataclass(frozen=True)
class GRPOLossConfig(LossConfig):
    """PPO/GRPO clipping. ``dual_clip_c`` None disables dual-clip."""

    eps_low: float = 0.2
    eps_high: float = 0.2
    dual_clip_c: float | None = None

    def validate(self) -> None:
        self._check_trust_region()


@dataclass(frozen=True)
class DAPOLossConfig(GRPOLossConfig):
    """DAPO's clip-higher: ``grpo`` with a wider upper bound (the objective, not TRL's ``loss_type="dapo"``)."""

    eps_high: float = 0.28


@register("pg", PGLossConfig)
def pg_loss(
    logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, cfg: PGLossConfig
) -> tuple[Tensor, ObjectiveTerms]:
    """Importance-weighted policy gradient, no clipping.

    Formula: ``loss = −Â·r`` with ``r = π_θ/π_old``; weight ``w = r`` everywhere.

    Args:
        logp, old_logp, mask: (B, T). adv: (B,) or (B, T).

    Returns:
        per_token_loss (B, T), zero on padding; its :class:`ObjectiveTerms` (the metrics, on request)
        (regions labelled with the diagnostic band ε = 0.2, since ``pg`` has no trust region).

    Reference: Williams 1992 (REINFORCE); the off-policy ratio form as in PPO, arXiv 1707.06347.
    Readable reference: :func:`dgpo.losses.reference.pg`.
    """
    x = prepare(logp, old_logp, adv, mask)  # checked inputs; x.ratio = r
    regions = Regions.classify(x.ratio, x.adv, DIAGNOSTIC_EPS, DIAGNOSTIC_EPS)  # labels for the metrics only
    per_token_loss = decoupled_surrogate(x, x.ratio)  # (B, T): value −Â·r, gradient −Â·r (w = r in every region)
    return per_token_loss, ObjectiveTerms(x, x.ratio, regions)


def _hard_clip(
    logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, cfg: GRPOLossConfig
) -> tuple[Tensor, ObjectiveTerms]:
    x = prepare(logp, old_logp, adv, mask)  # checked inputs; x.ratio = r
    with torch.no_grad():
        r = x.ratio  # (B, T)
        regions = Regions.classify(r, x.adv, cfg.eps_low, cfg.eps_high, cfg.dual_clip_c)
        # The clipped branch of the min is a constant, so LN and HP tokens get no gradient at all.
        weight = regions.table(inside=r, ln=0.0, hp=0.0, lp=r, hn=r)  # (B, T)
        if cfg.dual_clip_c is not None:  # dual-clip's cap −c·Â is a constant too: HN tokens with r > c stop
            weight = torch.where(regions.dual_clipped, 0.0, weight)  # (B, T)
        value = clipped_value(r, x.adv, cfg.eps_low, cfg.eps_high, cfg.dual_clip_c)  # (B, T)
    per_token_loss = decoupled_surrogate(x, weight, value)  # (B, T)
    return per_token_loss, ObjectiveTerms(x, weight, regions)


@register("grpo", GRPOLossConfig)
def grpo_loss(
    logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, cfg: GRPOLossConfig
) -> tuple[Tensor, ObjectiveTerms]:
    """PPO-clip as used by GRPO, with optional dual-clip.

    Formula: ``loss = −min(r·Â, clip(r, 1−ε_low, 1+ε_high)·Â)``; with dual-clip, for Â < 0,
    ``loss = min(that, −c·Â)``. Weight: ``w = r`` inside and on LP/HN, ``w = 0`` on LN and HP
    (and on HN where ``r > c``).

    Args:
        logp, old_logp, mask: (B, T). adv: (B,) or (B, T). cfg: :class:`GRPOLossConfig`.

    Returns:
        per_token_loss (B, T), zero on padding; its :class:`ObjectiveTerms` (the metrics, on request).

    Reference: PPO, Schulman et al. 2017, arXiv 1707.06347; GRPO, Shao et al. 2024, arXiv 2402.03300;
    dual-clip, Ye et al. 2020, arXiv 1912.09729.
    Readable reference: :func:`dgpo.losses.reference.grpo`.
    """
    return _hard_clip(logp, old_logp, adv, mask, cfg)


@register("dapo", DAPOLossConfig)
def dapo_loss(
    logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, cfg: DAPOLossConfig
) -> tuple[Tensor, ObjectiveTerms]:
    """DAPO's clip-higher objective: :func:`grpo_loss` with ``eps_high = 0.28`` by default.

    Formula and weights as ``grpo``. DAPO's token-level aggregation is chosen separately
    (``token-mean`` in :mod:`dgpo.aggregation`).

    Reference: DAPO, Yu et al. 2025, arXiv 2503.14476.
    Readable reference: :func:`dgpo.losses.reference.grpo`.
    """
    return _hard_clip(logp, old_logp, adv, mask, cfg)
