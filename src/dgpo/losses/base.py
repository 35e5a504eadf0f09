"""Machinery shared by every objective: input checks, the ratio, regions, the exact surrogate and metrics.

Every objective is defined by two per-token tensors (DESIGN.md §2):

* the forward value ``v`` (it already contains −Â), and
* the log-prob-gradient weight ``w``, so that ``∂loss/∂logp = −Â·w``.

:func:`assemble` turns them into one loss that is exact in both, whatever the objective:

    loss = sg(v) − Â · sg(w) · (logp − sg(logp))

Its value is ``v`` (the second term is 0) and its gradient is ``−Â·w``. ``v`` and ``w`` are computed under
``torch.no_grad()``, so autograd keeps a single (B, T) coefficient per call instead of a graph through
``exp``/``clamp``/``where``: cheap in memory, and no branch of a ``where`` can leak a NaN gradient.

The log-ratio is clamped to ±:data:`LOG_RATIO_CLAMP` before ``exp``. Beyond that bound the weight is evaluated at
the clamped ratio and the gradient stays ``−Â·w(clamped r)`` (verl's clamp instead makes it zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dgpo.metrics import (
    RATIO_MAX,
    RATIO_MEAN,
    REGION_KEYS,
    WEIGHT_LN_VS_PG_MAX,
    WEIGHT_VS_PG_MAX,
    WEIGHT_VS_PG_MEAN,
    masked_fraction,
    masked_max,
    masked_mean,
)

LOG_RATIO_CLAMP = 20.0


@dataclass(frozen=True)
class TokenInputs:
    """Checked, upcast inputs of one objective call; every tensor is (B, T).

    ``logp`` carries the gradient (masked positions replaced by 0 so padding can never produce NaN);
    ``old_logp``, ``adv``, ``log_ratio`` and ``ratio`` are detached; ``mask`` is boolean.
    """

    logp: Tensor
    old_logp: Tensor
    adv: Tensor
    mask: Tensor
    log_ratio: Tensor
    ratio: Tensor


@dataclass(frozen=True)
class Regions:
    """Boolean (B, T) masks of the five regions of DESIGN.md §2, decided on a ratio and the sign of Â.

    Tokens with Â = 0 are labelled as positive (LP/HP); they get zero gradient in every objective anyway.
    """

    inside: Tensor
    ln: Tensor
    hp: Tensor
    lp: Tensor
    hn: Tensor

    @classmethod
    def classify(cls, ratio: Tensor, adv: Tensor, eps_low: float, eps_high: float) -> Regions:
        below = ratio < 1.0 - eps_low
        above = ratio > 1.0 + eps_high
        negative = adv < 0
        return cls(
            inside=~(below | above),
            ln=below & negative,
            hp=above & ~negative,
            lp=below & ~negative,
            hn=above & negative,
        )


def _require_tensor(name: str, value: object) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def _require_finite(name: str, values: Tensor, active: Tensor) -> None:
    bad = ~torch.isfinite(values) & active
    count = int(bad.sum())
    if count:
        raise ValueError(f"{name} holds NaN or Inf at {count} active position(s); expected finite values")


def compute_dtype(*tensors: Tensor) -> torch.dtype:
    """float64 stays float64; everything else (bf16, fp16, float32) is computed in float32."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def prepare(logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor) -> TokenInputs:
    """Validate shapes and values, upcast, broadcast ``adv`` to (B, T), and compute the clamped ratio.

    Args:
        logp: (B, T) log π_θ of the sampled tokens (carries the gradient).
        old_logp: (B, T) log π_old (treated as a constant).
        adv: (B,) per-sequence or (B, T) per-token advantages Â (treated as a constant).
        mask: (B, T) 1/True on response tokens, 0/False on padding.

    Raises:
        TypeError: a non-tensor argument or a non-floating ``logp``.
        ValueError: a shape mismatch (naming both shapes), a mask value other than 0/1, or NaN/Inf on an
            active token.
    """
    logp = _require_tensor("logp", logp)
    old_logp = _require_tensor("old_logp", old_logp)
    adv = _require_tensor("adv", adv)
    mask = _require_tensor("mask", mask)
    if logp.dim() != 2:
        raise ValueError(f"logp must have shape (B, T), got {tuple(logp.shape)}")
    if not logp.is_floating_point() or not old_logp.is_floating_point():
        raise TypeError(f"logp and old_logp must be floating point, got {logp.dtype} and {old_logp.dtype}")
    for name, other in (("old_logp", old_logp), ("mask", mask)):
        if other.shape != logp.shape:
            raise ValueError(f"{name} shape {tuple(other.shape)} does not match logp shape {tuple(logp.shape)}")
    if adv.shape not in (logp.shape[:1], logp.shape):
        raise ValueError(
            f"adv shape {tuple(adv.shape)} does not match logp shape {tuple(logp.shape)}; "
            f"expected ({logp.shape[0]},) or {tuple(logp.shape)}"
        )

    if mask.dtype == torch.bool:
        active = mask
    else:
        active = mask != 0
        if bool(((mask != 0) & (mask != 1)).any()):
            raise ValueError("mask must hold only 0 and 1 (or booleans)")

    dtype = compute_dtype(logp, old_logp)
    adv_tokens = adv.detach().to(dtype)
    if adv_tokens.dim() == 1:
        adv_tokens = adv_tokens.unsqueeze(1).expand_as(logp)
    _require_finite("logp", logp.detach(), active)
    _require_finite("old_logp", old_logp.detach(), active)
    _require_finite("adv", adv_tokens, active)

    zero = torch.zeros((), dtype=dtype, device=logp.device)
    # Padding may hold anything (-inf, NaN): replace it before any arithmetic so nothing can leak into gradients.
    logp_c = torch.where(active, logp.to(dtype), zero)
    old_c = torch.where(active, old_logp.detach().to(dtype), zero)
    adv_c = torch.where(active, adv_tokens, zero)
    log_ratio = (logp_c.detach() - old_c).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    return TokenInputs(
        logp=logp_c, old_logp=old_c, adv=adv_c, mask=active, log_ratio=log_ratio, ratio=torch.exp(log_ratio)
    )


def clipped_value(ratio: Tensor, adv: Tensor, eps_low: float, eps_high: float, dual_clip_c: float | None) -> Tensor:
    """PPO's clipped per-token loss ``−min(r·Â, clip(r, 1−ε_low, 1+ε_high)·Â)``.

    With dual-clip (Ye et al. 2020, arXiv 1912.09729), for Â < 0 the loss is further capped at ``−c·Â``.
    """
    unclipped = -adv * ratio
    clipped = -adv * ratio.clamp(1.0 - eps_low, 1.0 + eps_high)
    value = torch.maximum(unclipped, clipped)
    if dual_clip_c is not None:
        value = torch.where(adv < 0, torch.minimum(value, -dual_clip_c * adv), value)
    return value


def assemble(
    inputs: TokenInputs, value: Tensor, weight: Tensor, regions: Regions, region_ratio: Tensor | None = None
) -> tuple[Tensor, dict[str, Tensor]]:
    """Build ``sg(v) − Â·sg(w)·(logp − sg(logp))`` (zero on padding) and the objective metrics.

    Args:
        inputs: the prepared tensors of :func:`prepare`.
        value: (B, T) forward value ``v`` (detached).
        weight: (B, T) log-prob-gradient weight ``w`` (detached).
        regions: the region masks, used for the ``region/*`` metrics.
        region_ratio: (B, T) ratio the regions were decided on, reported as ``ratio/*``
            (defaults to the token ratio; GSPO passes its sequence ratio).
    """
    coefficient = (inputs.adv * weight).detach()
    surrogate = value.detach() - coefficient * (inputs.logp - inputs.logp.detach())
    per_token_loss = torch.where(inputs.mask, surrogate, torch.zeros_like(surrogate))
    with torch.no_grad():
        metrics = objective_metrics(inputs, weight, regions, inputs.ratio if region_ratio is None else region_ratio)
    return per_token_loss, metrics


def objective_metrics(inputs: TokenInputs, weight: Tensor, regions: Regions, region_ratio: Tensor) -> dict[str, Tensor]:
    """The metric dict of DESIGN.md §3, every entry a detached 0-d tensor over active tokens."""
    mask = inputs.mask
    # Ratio-to-PG w/r: plain PG has w = r, so this is the one number that compares objectives.
    vs_pg = weight / inputs.ratio
    metrics = {RATIO_MEAN: masked_mean(region_ratio, mask), RATIO_MAX: masked_max(region_ratio, mask)}
    for key, selected in zip(
        REGION_KEYS, (regions.inside, regions.ln, regions.hp, regions.lp, regions.hn), strict=True
    ):
        metrics[key] = masked_fraction(selected, mask, vs_pg.dtype)
    metrics[WEIGHT_VS_PG_MEAN] = masked_mean(vs_pg, mask)
    metrics[WEIGHT_VS_PG_MAX] = masked_max(vs_pg, mask)
    metrics[WEIGHT_LN_VS_PG_MAX] = masked_max(vs_pg, mask & regions.ln)
    return metrics
