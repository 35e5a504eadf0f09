"""SAPO: a smooth, temperature-controlled sigmoid gate instead of a hard clip."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dgpo.losses.config import LossConfig
from dgpo.losses.core import Regions, decoupled_surrogate, prepare
from dgpo.losses.registry import register
from dgpo.losses.terms import ObjectiveTerms
from dgpo.metrics import DIAGNOSTIC_EPS


@dataclass(frozen=True)
class SAPOLossConfig(LossConfig):
    """SAPO temperatures; negative-advantage tokens use a slightly sharper gate (tau_neg > tau_pos)."""

    tau_pos: float = 1.0
    tau_neg: float = 1.05

    def validate(self) -> None:
        self._check_positive("tau_pos", "tau_neg")


@register("sapo", SAPOLossConfig)
def sapo_loss(
    logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, cfg: SAPOLossConfig
) -> tuple[Tensor, ObjectiveTerms]:
    """Soft adaptive policy optimisation.

    Formula: ``σ = sigmoid(τ·(r − 1))`` with ``τ = tau_pos`` for Â > 0 and ``tau_neg`` for Â < 0;
    ``loss = −(4/τ)·σ·Â``, so ``w = 4σ(1−σ)·r`` (equal to r at r = 1, decaying smoothly on both sides).

    Args:
        logp, old_logp, mask: (B, T). adv: (B,) or (B, T). cfg: :class:`SAPOLossConfig`.

    Returns:
        per_token_loss (B, T), zero on padding; its :class:`ObjectiveTerms` (the metrics, on request)
        (regions labelled with the diagnostic band ε = 0.2, since SAPO has no trust region).

    Reference: SAPO, Gao et al. 2025, arXiv 2511.20347.
    Readable reference: :func:`dgpo.losses.reference.sapo`.
    """
    x = prepare(logp, old_logp, adv, mask)  # checked inputs; x.ratio = r
    with torch.no_grad():
        r = x.ratio  # (B, T)
        regions = Regions.classify(r, x.adv, DIAGNOSTIC_EPS, DIAGNOSTIC_EPS)  # labels for the metrics only
        # No regions in the formula: one smooth gate, sharper for Â < 0. τ is shaped like Â: (B, 1) or (B, T).
        tau = torch.where(x.adv < 0, x.adv.new_tensor(cfg.tau_neg), x.adv.new_tensor(cfg.tau_pos))
        gate = torch.sigmoid(tau * (r - 1))  # (B, T): σ(τ·(r − 1))
        value = -(4 / tau) * gate * x.adv  # (B, T)
        weight = 4 * gate * (1 - gate) * r  # (B, T): ∂/∂logp of (4/τ)·σ(τ(r − 1)) is 4σ(1−σ)·r
    per_token_loss = decoupled_surrogate(x, weight, value)  # (B, T)
    return per_token_loss, ObjectiveTerms(x, weight, regions)
