"""Soft clipping that keeps a constant coefficient on ∇log π: ``cispo``, ``gppo``, ``ce_gppo``.

These keep the clipped tokens' gradient, but as ``W = const/π`` in probability-gradient form, which grows
without bound as π → 0 on the left boundary (LN) — the divergence DGPO removes.
"""

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
class CISPOLossConfig(LossConfig):
    """CISPO clips the importance weight itself. ``eps_low >= 1`` means no lower bound; ``eps_high`` may exceed 1
    (MiniMax-M1's cap of 5 on r is ``eps_high = 4``)."""

    eps_low: float = 0.2
    eps_high: float = 0.2

    def validate(self) -> None:
        self._check_positive("eps_low", "eps_high")


@dataclass(frozen=True)
class GPPOLossConfig(LossConfig):
    """GPPO: gradient-preserving clipping with dual-clip on HN."""

    eps_low: float = 0.2
    eps_high: float = 0.28
    dual_clip_c: float | None = 10.0

    def validate(self) -> None:
        self._check_trust_region()


@dataclass(frozen=True)
class CEGPPOLossConfig(LossConfig):
    """CE-GPPO: GPPO with the LN and HP gradients scaled by ``beta1`` and ``beta2``."""

    eps_low: float = 0.2
    eps_high: float = 0.2
    beta1: float = 0.5
    beta2: float = 1.0
    dual_clip_c: float | None = 10.0

    def validate(self) -> None:
        self._check_trust_region()
        self._check_positive("beta1", "beta2")


@register("cispo", CISPOLossConfig)
def cispo_loss(logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, cfg: CISPOLossConfig) -> tuple[Tensor, dict]:
    """Clipped IS-weight policy optimisation: every token keeps a gradient, with a clipped, detached weight.

    Formula: ``loss = −sg(clip(r, 1−ε_low, 1+ε_high))·Â·log π``; weight ``w = clip(r)`` on every token,
    whatever the sign of Â (so ``w/r = (1−ε_low)/r → ∞`` on LN as r → 0).

    Args:
        logp, old_logp, mask: (B, T). adv: (B,) or (B, T). cfg: :class:`CISPOLossConfig`.

    Returns:
        per_token_loss (B, T), zero on padding; metrics under :data:`dgpo.metrics.OBJECTIVE_METRIC_KEYS`.

    Reference: MiniMax-M1, MiniMax 2025, arXiv 2506.13585.
    """
    x = prepare(logp, old_logp, adv, mask)
    with torch.no_grad():
        # eps_low >= 1 puts the lower bound at or below 0, i.e. no lower bound for a positive ratio.
        lower = 1.0 - cfg.eps_low if cfg.eps_low < 1 else None
        weight = x.ratio.clamp(lower, 1.0 + cfg.eps_high)
        value = (x.adv * weight).mul_(x.logp_values()).neg_()
        regions = Regions.classify(x.ratio, x.adv, cfg.eps_low, cfg.eps_high)
    return assemble(x, weight, regions, value=value, scratch=weight)


def _gradient_preserving(
    x, cfg: GPPOLossConfig | CEGPPOLossConfig, ln_scale: float, hp_scale: float
) -> tuple[Tensor, dict[str, Tensor]]:
    with torch.no_grad():
        regions = Regions.classify(x.ratio, x.adv, cfg.eps_low, cfg.eps_high)
        # r elsewhere, the constant weight on LN and HP: products with 0/1 indicators, exact.
        clipped = regions.clipped()
        boundary_weight = regions.negative * (ln_scale * (1.0 - cfg.eps_low))
        boundary_weight = boundary_weight + regions.positive * (hp_scale * (1.0 + cfg.eps_high))
        weight = torch.rsub(clipped, 1.0).mul_(x.ratio).addcmul_(clipped, boundary_weight)
        value = clipped_value(x.ratio, x.adv, cfg.eps_low, cfg.eps_high, cfg.dual_clip_c)
        if ln_scale != 1.0 or hp_scale != 1.0:
            # On LN/HP the clipped value is −Â·(1∓ε); scale it like the gradient: −Â·β·(1∓ε).
            extra = regions.negative * ((ln_scale - 1.0) * (1.0 - cfg.eps_low))
            extra = extra + regions.positive * ((hp_scale - 1.0) * (1.0 + cfg.eps_high))
            value.addcmul_(clipped, -x.adv * extra)
        if cfg.dual_clip_c is not None:  # dual-clip stops HN tokens with r > c
            weight.mul_(regions.dual_clip_kept(x.ratio, cfg.dual_clip_c))
    return assemble(x, weight, regions, value=value, scratch=weight)


@register("gppo", GPPOLossConfig)
def gppo_loss(logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, cfg: GPPOLossConfig) -> tuple[Tensor, dict]:
    """Gradient-preserving PPO: clipped tokens keep a bounded gradient through ``r/sg(r)``.

    Formula: forward value as ``grpo`` with dual-clip ``c``; weight ``w = r`` inside and on LP/HN,
    ``w = 1−ε_low`` on LN, ``w = 1+ε_high`` on HP, ``w = 0`` on HN where ``r > c``.

    Args:
        logp, old_logp, mask: (B, T). adv: (B,) or (B, T). cfg: :class:`GPPOLossConfig`.

    Returns:
        per_token_loss (B, T), zero on padding; metrics under :data:`dgpo.metrics.OBJECTIVE_METRIC_KEYS`.

    Reference: Klear-Reasoner (GPPO), Su et al. 2025, arXiv 2508.07629.
    """
    return _gradient_preserving(prepare(logp, old_logp, adv, mask), cfg, 1.0, 1.0)


@register("ce_gppo", CEGPPOLossConfig)
def ce_gppo_loss(
    logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, cfg: CEGPPOLossConfig
) -> tuple[Tensor, dict]:
    """CE-GPPO: GPPO with separate scales on the two clipped boundaries, to steer entropy.

    Formula: as ``gppo``, with ``w = β1·(1−ε_low)`` on LN and ``w = β2·(1+ε_high)`` on HP; the forward values
    there are ``−Â·β1·(1−ε_low)`` and ``−Â·β2·(1+ε_high)``.

    Args:
        logp, old_logp, mask: (B, T). adv: (B,) or (B, T). cfg: :class:`CEGPPOLossConfig`.

    Returns:
        per_token_loss (B, T), zero on padding; metrics under :data:`dgpo.metrics.OBJECTIVE_METRIC_KEYS`.

    Reference: CE-GPPO, Su et al. 2025, arXiv 2509.20712.
    """
    return _gradient_preserving(prepare(logp, old_logp, adv, mask), cfg, cfg.beta1, cfg.beta2)
