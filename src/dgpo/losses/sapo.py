"""SAPO: a smooth, temperature-controlled sigmoid gate instead of a hard clip."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dgpo.losses.base import assemble
from dgpo.losses.config import LossConfig
from dgpo.losses.inputs import prepare
from dgpo.losses.regions import Regions
from dgpo.losses.registry import register
from dgpo.metrics import DIAGNOSTIC_EPS


@dataclass(frozen=True)
class SAPOLossConfig(LossConfig):
    """SAPO temperatures; negative-advantage tokens use a slightly sharper gate (tau_neg > tau_pos)."""

    tau_pos: float = 1.0
    tau_neg: float = 1.05

    def validate(self) -> None:
        self._check_positive("tau_pos", "tau_neg")


@register("sapo", SAPOLossConfig)
def sapo_loss(logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, cfg: SAPOLossConfig) -> tuple[Tensor, dict]:
    """Soft adaptive policy optimisation.

    Formula: ``σ = sigmoid(τ·(r − 1))`` with ``τ = tau_pos`` for Â > 0 and ``tau_neg`` for Â < 0;
    ``loss = −(4/τ)·σ·Â``, so ``w = 4σ(1−σ)·r`` (equal to r at r = 1, decaying smoothly on both sides).

    Args:
        logp, old_logp, mask: (B, T). adv: (B,) or (B, T). cfg: :class:`SAPOLossConfig`.

    Returns:
        per_token_loss (B, T), zero on padding; metrics under :data:`dgpo.metrics.OBJECTIVE_METRIC_KEYS`
        (regions labelled with the diagnostic band ε = 0.2, since SAPO has no trust region).

    Reference: SAPO, Gao et al. 2025, arXiv 2511.20347.
    """
    x = prepare(logp, old_logp, adv, mask)
    with torch.no_grad():
        regions = Regions.classify(x.ratio, x.adv, DIAGNOSTIC_EPS, DIAGNOSTIC_EPS)
        # τ at Â's shape ((B, 1) for per-sequence advantages): tau_neg where Â < 0, tau_pos elsewhere (Â = 0 has
        # no gradient either way).
        tau = regions.negative * cfg.tau_neg + regions.positive * cfg.tau_pos
        gate = (x.ratio - 1.0).mul_(tau).sigmoid_()
        vs_pg = torch.rsub(gate, 1.0).mul_(gate).mul_(4.0)
        value = gate.mul_(x.adv * (-4.0 / tau))
        weight = x.ratio * vs_pg
    return assemble(x, weight, regions, value=value, weight_vs_pg=vs_pg, scratch=weight)
