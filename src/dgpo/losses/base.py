"""The exact decoupled surrogate shared by every objective, the PPO clipped value, and the objective metrics.

Every objective is defined by two per-token tensors (docs/design.md §2):

* the forward value ``v`` (it already contains −Â), and
* the log-prob-gradient weight ``w``, so that ``∂loss/∂logp = −Â·w``.

:func:`assemble` turns them into one per-token loss that is exact in both, whatever the objective:

    loss = sg(v) − Â · sg(w) · (logp − sg(logp))

Its value is ``v`` and its gradient is ``−Â·w``. It is implemented as a custom autograd function
(:class:`DecoupledSurrogate`) rather than as that expression: autograd then keeps one (B, T) tensor, the slope
``−Â·w``, and the backward is one multiplication; ``logp`` itself is never read, so whatever padding holds (NaN,
−Inf) cannot reach a value or a gradient. ``v`` and ``w`` are computed under ``torch.no_grad()`` from the
prepared inputs (:mod:`dgpo.losses.inputs`), whose log-ratio is clamped to ±20.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from dgpo.losses.inputs import TokenInputs
from dgpo.losses.regions import Regions
from dgpo.metrics import (
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

    ``forward(logp, adv, weight, mask, value)``: ``slope = −Â·w·mask`` is computed here and is the only tensor
    saved for backward. With ``value`` None (``v = −Â·w``) the output *is* the slope, saved as an output, like
    ``torch.exp`` saves its result: one (B, T) tensor for value and gradient. Modifying that output in place then
    makes backward raise autograd's usual "modified by an inplace operation" error; out-of-place use is free.
    """

    @staticmethod
    def forward(ctx, logp: Tensor, adv: Tensor, weight: Tensor, mask: Tensor, value: Tensor | None) -> Tensor:
        slope = torch.mul(adv, weight)
        slope = slope.mul_(mask) if slope.shape == mask.shape else slope * mask
        slope.neg_()
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


def clipped_value(ratio: Tensor, adv: Tensor, eps_low: float, eps_high: float, dual_clip_c: float | None) -> Tensor:
    """PPO's clipped per-token loss ``−min(r·Â, clip(r, 1−ε_low, 1+ε_high)·Â)`` (not masked).

    With dual-clip (Ye et al. 2020, arXiv 1912.09729), for Â < 0 the loss is further capped at ``−c·Â``.
    """
    negative_adv = -adv
    value = ratio * negative_adv
    clipped = ratio.clamp(1.0 - eps_low, 1.0 + eps_high)
    clipped = clipped.mul_(negative_adv) if clipped.shape == value.shape else clipped * negative_adv
    torch.maximum(value, clipped, out=value)
    if dual_clip_c is not None:
        # The cap −c·Â applies where Â < 0 only; elsewhere +Inf leaves the value alone. Built at Â's shape, which
        # is (B, 1) for per-sequence advantages, so this costs one (B, T) minimum.
        cap = torch.where(adv < 0, dual_clip_c * negative_adv, torch.full_like(adv, float("inf")))
        torch.minimum(value, cap, out=value)
    return value


def assemble(
    inputs: TokenInputs,
    weight: Tensor,
    regions: Regions,
    value: Tensor | None = None,
    region_ratio: Tensor | None = None,
    weight_vs_pg: Tensor | None = None,
    scratch: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The per-token loss (zero on padding) with value ``v`` and gradient ``−Â·w``, and the objective metrics.

    Args:
        inputs: the prepared tensors of :func:`dgpo.losses.inputs.prepare`.
        weight: (B, T) or (B, 1) log-prob-gradient weight ``w`` (detached, finite, ≥ 0).
        regions: the regions, used for the ``region/*`` metrics.
        value: forward value ``v`` (detached, finite); None means ``v = −Â·w``, the value of every objective whose
            surrogate is ``−Â·r``-shaped, which saves a pass.
        region_ratio: (B, T) or (B, 1) ratio the regions were decided on, reported as ``ratio/*``
            (defaults to the token ratio; GSPO passes its sequence ratio).
        weight_vs_pg: ``w/r`` when the objective already has it; computed otherwise.
        scratch: a (B, T) compute-dtype tensor the objective no longer needs — ``weight`` itself when it owns
            it — reused for the metrics instead of a fresh allocation (it is overwritten).
    """
    per_token_loss = DecoupledSurrogate.apply(inputs.logp, inputs.adv, weight, inputs.mask, value)
    with torch.no_grad():
        metrics = objective_metrics(
            inputs, weight, regions, inputs.ratio if region_ratio is None else region_ratio, weight_vs_pg, scratch
        )
    return per_token_loss, metrics


def objective_metrics(
    inputs: TokenInputs,
    weight: Tensor,
    regions: Regions,
    region_ratio: Tensor,
    vs_pg: Tensor | None = None,
    scratch: Tensor | None = None,
) -> dict[str, Tensor]:
    """The metric dict of docs/design.md §3, every entry a detached 0-d tensor (0 when no token is active).

    ``ratio/*`` and ``region/*`` are over active tokens (the regions and ``region/zero_adv`` add up to 1);
    ``weight/*`` only over active tokens with Â ≠ 0, since a zero-advantage token has no gradient to weigh.
    ``vs_pg`` is the weight relative to plain PG, ``w/r`` (computed from ``weight`` when not given): the one number
    that compares objectives. Maxima are taken after multiplying by the 0/1 masks, which is exact because ratios and
    weights are ≥ 0. One (B, T) buffer (``scratch``, or a new one) serves every masked reduction. The two counts
    ``tokens/*`` let callers combine micro-batches and processes exactly (:class:`dgpo.metrics.MetricTotals`).
    """
    if scratch is None or scratch.shape != inputs.mask.shape:
        scratch = torch.empty_like(inputs.mask)
    # w/r first: ``scratch`` may be ``weight`` itself (an element-wise op may write over its own input).
    if vs_pg is None:
        active_vs_pg = torch.div(weight, inputs.ratio, out=scratch).mul_(inputs.mask)
    else:
        active_vs_pg = torch.mul(vs_pg, inputs.mask, out=scratch)
    active_vs_pg.mul_(regions.nonzero)
    vs_pg_sum, vs_pg_max = active_vs_pg.sum(), active_vs_pg.max()
    ln_vs_pg_max = regions.ln_max(active_vs_pg)
    if region_ratio.shape[-1] == 1 and inputs.mask.shape[-1] != 1:  # a per-sequence ratio (GSPO)
        ratio_sum = (region_ratio * inputs.row_tokens).sum()
        ratio_max = (region_ratio * inputs.row_tokens.sign()).max()
    else:
        active_ratio = torch.mul(region_ratio, inputs.mask, out=scratch)
        ratio_sum, ratio_max = active_ratio.sum(), active_ratio.max()
    counts = regions.counts(inputs.mask, inputs.row_tokens, inputs.tokens)
    nonzero_adv_tokens = inputs.tokens - counts[-1]
    tokens = inputs.tokens.clamp_min(1)
    metrics = {RATIO_MEAN: ratio_sum / tokens, RATIO_MAX: ratio_max}
    for key, count in zip(REGION_KEYS, counts, strict=True):
        metrics[key] = count / tokens
    metrics[WEIGHT_VS_PG_MEAN] = vs_pg_sum / nonzero_adv_tokens.clamp_min(1)
    metrics[WEIGHT_VS_PG_MAX] = vs_pg_max
    metrics[WEIGHT_LN_VS_PG_MAX] = ln_vs_pg_max
    metrics[TOKENS_ACTIVE] = inputs.tokens.clone()
    metrics[TOKENS_NONZERO_ADV] = nonzero_adv_tokens
    return metrics
