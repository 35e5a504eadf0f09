"""What every objective shares: the exact decoupled surrogate, PPO's clipped value, and the objective metrics.

Every objective is defined by two per-token tensors (docs/design.md §2):

* the forward value ``v`` (it already contains −Â), and
* the log-prob-gradient weight ``w``, so that ``∂loss/∂logp = −Â·w``.

:func:`decoupled_surrogate` turns them into one per-token loss that is exact in both, whatever the objective:

    loss = sg(v) − Â · sg(w) · (logp − sg(logp))

Its value is ``v`` and its gradient is ``−Â·w``. It is a custom autograd function (:class:`DecoupledSurrogate`)
rather than that expression: autograd then keeps one (B, T) tensor, the slope ``−Â·w``, and the backward is one
multiplication; ``logp`` itself is never read, so whatever padding holds (NaN, −Inf) cannot reach a value or a
gradient. ``v`` and ``w`` are computed under ``torch.no_grad()`` from the prepared inputs
(:mod:`dgpo.losses.inputs`), whose log-ratio is clamped to ±20.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from dgpo.losses.inputs import TokenInputs
from dgpo.losses.regions import Regions
from dgpo.metrics import (
    GRAD_ABS_SUM,
    GRAD_SHARE_KEYS,
    RATIO_MAX,
    RATIO_MEAN,
    REGION_KEYS,
    TOKENS_ACTIVE,
    TOKENS_NONZERO_ADV,
    WEIGHT_LN_VS_PG_MAX,
    WEIGHT_VS_PG_MAX,
    WEIGHT_VS_PG_MEAN,
)


class DecoupledSurrogate(torch.autograd.Function):
    """Per-token loss with value ``v`` and gradient ``∂/∂logp = −Â·w`` (cast to logp's dtype), zero on padding.

    ``forward(logp, adv, weight, mask, value)``: ``slope = −Â·w·mask`` is the only tensor saved for backward. With
    ``value`` None (``v = −Â·w``) the output *is* the slope, saved as an output, like ``torch.exp`` saves its
    result: one (B, T) tensor for value and gradient. Modifying that output in place then makes backward raise
    autograd's usual "modified by an inplace operation" error; out-of-place use is free.
    """

    @staticmethod
    def forward(ctx, logp: Tensor, adv: Tensor, weight: Tensor, mask: Tensor, value: Tensor | None) -> Tensor:
        slope = adv * weight  # (B, T), or (B, 1) for a per-sequence weight (GSPO)
        slope = slope.mul_(mask) if slope.shape == mask.shape else slope * mask  # (B, T), in place when possible
        slope.neg_()  # −Â·w·mask
        ctx.save_for_backward(slope)
        ctx.logp_dtype = logp.dtype
        return slope if value is None else value * mask

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None, None, None]:
        (slope,) = ctx.saved_tensors
        # Written straight into logp's dtype (bf16: no float32 temporary); the product itself is float32.
        shape = torch.broadcast_shapes(grad.shape, slope.shape)
        grad_logp = torch.empty(shape, dtype=ctx.logp_dtype, device=slope.device)
        return torch.mul(grad, slope, out=grad_logp), None, None, None, None


def decoupled_surrogate(x: TokenInputs, weight: Tensor, value: Tensor | None = None) -> Tensor:
    """The (B, T) per-token loss: value ``v`` (``−Â·w`` when None), gradient ``∂/∂logp = −Â·w``, zero on padding.

    ``weight`` (B, T) or (B, 1) and ``value`` (B, T) are detached and finite.
    """
    return DecoupledSurrogate.apply(x.logp, x.adv, weight, x.mask, value)


def clipped_value(ratio: Tensor, adv: Tensor, eps_low: float, eps_high: float, dual_clip_c: float | None) -> Tensor:
    """PPO's clipped per-token loss ``−min(r·Â, clip(r, 1−ε_low, 1+ε_high)·Â)`` (not masked).

    With dual-clip (Ye et al. 2020, arXiv 1912.09729), for Â < 0 the loss is further capped at ``−c·Â``.
    """
    value = -torch.minimum(ratio * adv, ratio.clamp(1.0 - eps_low, 1.0 + eps_high) * adv)  # (B, T)
    if dual_clip_c is not None:
        value = torch.where(adv < 0, torch.minimum(value, -dual_clip_c * adv), value)  # (B, T)
    return value


def objective_metrics(
    x: TokenInputs,
    weight: Tensor,
    regions: Regions,
    region_ratio: Tensor | None = None,
    weight_vs_pg: Tensor | None = None,
) -> dict[str, Tensor]:
    """The metric dict of docs/metrics.md, every entry a detached 0-d tensor (0 when no token is active).

    ``ratio/*`` and ``region/*`` are over active tokens (the regions and ``region/zero_adv`` add up to 1);
    ``weight/*`` only over active tokens with Â ≠ 0, since a zero-advantage token has no gradient to weigh. The
    weight is reported relative to plain PG, ``w/r``: the one number that compares objectives (``weight_vs_pg``
    when the objective has it, else ``weight / r``). ``region_ratio`` is the ratio the regions were decided on
    (GSPO's (B, 1) sequence ratio; the token ratio by default). The counts ``tokens/*`` let callers combine
    micro-batches and processes exactly (:class:`dgpo.metrics.MetricTotals`).
    """
    with torch.no_grad():
        counts = regions.sums(x.mask, x.row_tokens)  # active tokens per region
        tokens = x.tokens.clamp_min(1)
        nonzero_adv_tokens = x.tokens - counts["zero_adv"]
        # One (B, T) buffer for the masked reductions: values are ≥ 0, so a max over value·mask is the masked max.
        scratch = torch.empty_like(x.mask)
        if region_ratio is None:  # the token ratio: one product gives the masked sum and the masked max
            active_ratio = torch.mul(x.ratio, x.mask, out=scratch)  # (B, T)
            ratio_sum, ratio_max = active_ratio.sum(), active_ratio.max()
        else:  # a (B, 1) sequence ratio (GSPO), weighted by each row's active tokens
            ratio_sum = (region_ratio * x.row_tokens).sum()
            ratio_max = (region_ratio * x.row_tokens.sign()).max()
        metrics = {RATIO_MEAN: ratio_sum / tokens, RATIO_MAX: ratio_max}
        for key in REGION_KEYS:  # "region/ln" is counts["ln"] over the active tokens
            metrics[key] = counts[key.removeprefix("region/")] / tokens

        if weight_vs_pg is None:
            vs_pg = torch.div(weight, x.ratio, out=scratch).mul_(x.mask)  # (B, T): w/r on active tokens
        else:
            vs_pg = torch.mul(weight_vs_pg, x.mask, out=scratch)  # (B, T)
        vs_pg.mul_(regions.negative + regions.positive)  # (B, T): and only where Â ≠ 0
        metrics[WEIGHT_VS_PG_MEAN] = vs_pg.sum() / nonzero_adv_tokens.clamp_min(1)
        metrics[WEIGHT_VS_PG_MAX] = vs_pg.max()
        if regions.negative.shape[-1] == 1:  # per-sequence Â: each row's max over its below tokens, Â < 0 rows
            row_max = vs_pg.mul_(regions.below).amax(dim=1, keepdim=True)  # (B, 1)
            metrics[WEIGHT_LN_VS_PG_MAX] = (row_max * regions.negative).max()
        else:
            metrics[WEIGHT_LN_VS_PG_MAX] = vs_pg.mul_(regions.ln).max()

        # Where the gradient goes: each region's share of Σ|Â·w|, the magnitude of ∂loss/∂logp (weights are ≥ 0).
        abs_grad = torch.mul(weight, x.mask, out=scratch).mul_(x.adv.abs())  # (B, T): |Â·w| on active tokens
        row_abs_grad = abs_grad.sum(dim=1, keepdim=True)  # (B, 1)
        grad_sums = regions.sums(abs_grad, row_abs_grad)
        abs_grad_sum = row_abs_grad.sum()
        for key in GRAD_SHARE_KEYS:  # "grad_share/ln" is grad_sums["ln"] over Σ|Â·w|
            metrics[key] = grad_sums[key.removeprefix("grad_share/")] / abs_grad_sum.clamp_min(_TINY)
        metrics[TOKENS_ACTIVE] = x.tokens.clone()
        metrics[TOKENS_NONZERO_ADV] = nonzero_adv_tokens
        metrics[GRAD_ABS_SUM] = abs_grad_sum
    return metrics


#: Floor of a denominator that is 0 only when its numerators are (no gradient at all): the shares are then 0.
_TINY = 1e-30
