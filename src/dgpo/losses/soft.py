"""Soft clipping that keeps a constant coefficient on ∇log π: ``cispo``, ``gppo``, ``ce_gppo``.

These keep the clipped tokens' gradient, but as ``W = const/π`` in probability-gradient form, which grows
without bound as π → 0 on the left boundary (LN) — the divergence DGPO removes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dgpo.losses.config import LossConfig
from dgpo.losses.core import Regions, TokenInputs, clipped_value, decoupled_surrogate, prepare
from dgpo.losses.registry import register
from dgpo.losses.terms import ObjectiveTerms


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
def cispo_loss(
    logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, cfg: CISPOLossConfig
) -> tuple[Tensor, ObjectiveTerms]:
    """Clipped IS-weight policy optimisation: every token keeps a gradient, with a clipped, detached weight.

    Formula: ``loss = −sg(clip(r, 1−ε_low, 1+ε_high))·Â·log π``; weight ``w = clip(r)`` on every token,
    whatever the sign of Â (so ``w/r = (1−ε_low)/r → ∞`` on LN as r → 0).

    Args:
        logp, old_logp, mask: (B, T). adv: (B,) or (B, T). cfg: :class:`CISPOLossConfig`.

    Returns:
        per_token_loss (B, T), zero on padding; its :class:`ObjectiveTerms` (the metrics, on request).

    Reference: MiniMax-M1, MiniMax 2025, arXiv 2506.13585.
    Readable reference: :func:`dgpo.losses.reference.cispo`.
    """
    x = prepare(logp, old_logp, adv, mask)  # checked inputs; x.ratio = r
    with torch.no_grad():
        r = x.ratio  # (B, T)
        low, high = 1 - cfg.eps_low, 1 + cfg.eps_high
        # eps_low >= 1: no lower bound on a positive r, so no token is below and LN/LP are empty.
        regions = Regions.classify(r, x.adv, cfg.eps_low, cfg.eps_high)
        # w = clip(r) whatever the sign of Â: on LN, w/r = (1−ε_low)/r grows without bound as r → 0.
        weight = regions.table(inside=r, ln=low, hp=high, lp=low, hn=high)  # (B, T)
        value = -x.adv * weight * x.logp_values()  # (B, T): −Â·sg(clip(r))·log π
    per_token_loss = decoupled_surrogate(x, weight, value)  # (B, T)
    return per_token_loss, ObjectiveTerms(x, weight, regions)


def _gradient_preserving(
    x: TokenInputs, cfg: GPPOLossConfig | CEGPPOLossConfig, ln_scale: float, hp_scale: float
) -> tuple[Tensor, ObjectiveTerms]:
    """GPPO's weights with the LN/HP constants scaled by ``ln_scale``/``hp_scale`` (β1, β2; 1 for GPPO)."""
    with torch.no_grad():
        r = x.ratio  # (B, T)
        regions = Regions.classify(r, x.adv, cfg.eps_low, cfg.eps_high, cfg.dual_clip_c)
        ln_weight = ln_scale * (1 - cfg.eps_low)  # LN: the gradient of β1·(1−ε_low)·r/sg(r)
        hp_weight = hp_scale * (1 + cfg.eps_high)  # HP: the gradient of β2·(1+ε_high)·r/sg(r)
        # w = const/π·π_old on the clipped boundaries: W = const/π grows without bound on LN as π → 0.
        weight = regions.table(inside=r, ln=ln_weight, hp=hp_weight, lp=r, hn=r)  # (B, T)
        if cfg.dual_clip_c is not None:  # dual-clip's cap −c·Â is a constant: HN tokens with r > c stop
            weight = torch.where(regions.dual_clipped, 0.0, weight)  # (B, T)
        # PPO's clipped value, scaled on LN/HP like the gradient (the paper): −Â·β·(1∓ε) there.
        ppo_value = clipped_value(r, x.adv, cfg.eps_low, cfg.eps_high, cfg.dual_clip_c)  # (B, T)
        value = regions.table(
            inside=ppo_value, ln=-x.adv * ln_weight, hp=-x.adv * hp_weight, lp=ppo_value, hn=ppo_value
        )  # (B, T)
    per_token_loss = decoupled_surrogate(x, weight, value)  # (B, T)
    return per_token_loss, ObjectiveTerms(x, weight, regions)


@register("gppo", GPPOLossConfig)
def gppo_loss(
    logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, cfg: GPPOLossConfig
) -> tuple[Tensor, ObjectiveTerms]:
    """Gradient-preserving PPO: clipped tokens keep a bounded gradient through ``r/sg(r)``.

    Formula: forward value as ``grpo`` with dual-clip ``c``; weight ``w = r`` inside and on LP/HN,
    ``w = 1−ε_low`` on LN, ``w = 1+ε_high`` on HP, ``w = 0`` on HN where ``r > c``.

    Args:
        logp, old_logp, mask: (B, T). adv: (B,) or (B, T). cfg: :class:`GPPOLossConfig`.

    Returns:
        per_token_loss (B, T), zero on padding; its :class:`ObjectiveTerms` (the metrics, on request).

    Reference: Klear-Reasoner (GPPO), Su et al. 2025, arXiv 2508.07629.
    Readable reference: :func:`dgpo.losses.reference.gppo`.
    """
    return _gradient_preserving(prepare(logp, old_logp, adv, mask), cfg, 1.0, 1.0)


@register("ce_gppo", CEGPPOLossConfig)
def ce_gppo_loss(
    logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, cfg: CEGPPOLossConfig
) -> tuple[Tensor, ObjectiveTerms]:
    """CE-GPPO: GPPO with separate scales on the two clipped boundaries, to steer entropy.

    Formula: as ``gppo``, with ``w = β1·(1−ε_low)`` on LN and ``w = β2·(1+ε_high)`` on HP; the forward values
    there are ``−Â·β1·(1−ε_low)`` and ``−Â·β2·(1+ε_high)``.

    Args:
        logp, old_logp, mask: (B, T). adv: (B,) or (B, T). cfg: :class:`CEGPPOLossConfig`.

    Returns:
        per_token_loss (B, T), zero on padding; its :class:`ObjectiveTerms` (the metrics, on request).

    Reference: CE-GPPO, Su et al. 2025, arXiv 2509.20712.
    Readable reference: :func:`dgpo.losses.reference.ce_gppo`.
    """
    return _gradient_preserving(prepare(logp, old_logp, adv, mask), cfg, cfg.beta1, cfg.beta2)
