"""The core every objective is built on: checked inputs, the four regions, the exact surrogate (docs/design.md §2–§3).

An objective is two per-token tensors (docs/design.md §2): the forward value ``v`` (it already contains −Â) and the
log-prob-gradient weight ``w``, so that ``∂loss/∂logp = −Â·w``. An objective module reads top to bottom:

    x = prepare(logp, old_logp, adv, mask)                        # checked inputs, r = exp(clamp(log r, ±20))
    regions = Regions.classify(x.ratio, x.adv, eps_low, eps_high)  # LN, HP, LP, HN as boolean masks
    weight = regions.table(inside=..., ln=..., hp=..., lp=..., hn=...)  # the paper's per-region table
    return decoupled_surrogate(x, weight, value), ObjectiveTerms(x, weight, regions)

With ``r = π_θ/π_old`` and the trust region ``[1 − ε_low, 1 + ε_high]``, the regions are:

=====  =====================  ======================================================
LN     Â < 0, r < 1 − ε_low   a bad token already made much less likely (hard clip stops it)
HP     Â > 0, r > 1 + ε_high  a good token already made much more likely (hard clip stops it)
LP     Â > 0, r < 1 − ε_low   a good token that became less likely (never clipped by PPO)
HN     Â < 0, r > 1 + ε_high  a bad token that became more likely (only dual-clip stops it)
=====  =====================  ======================================================

Every other active token is *inside*; tokens with Â = 0 belong to no region (their gradient is zero in every
objective). Padding needs no masking: :func:`prepare` sets the ratio to exactly 1 and Â to 0 there.

The metrics (docs/metrics.md) are computed only when asked for: :class:`ObjectiveTerms` keeps the tensors the loss
was built from and turns them into the metric dict on first access (:mod:`dgpo.losses.terms`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from dgpo.ranges import NonFiniteError

#: |log r| is clamped to this before ``exp`` (docs/design.md §2): r stays in [e⁻²⁰, e²⁰], finite in float32.
LOG_RATIO_CLAMP = 20.0


@dataclass(frozen=True)
class TokenInputs:
    """Checked inputs of one objective call, detached and in the compute dtype (:func:`compute_dtype`).

    Attributes:
        logp: the caller's (B, T) log π_θ, which carries the gradient. Never read on padding.
        log_ratio: (B, T) ``clamp(logp − old_logp, ±20)``; 0 on padding.
        ratio: (B, T) ``exp(log_ratio)``; exactly 1 on padding, inside every trust region.
        adv: Â as a (B, 1) column (per-sequence) or (B, T) (per-token); 0 on padding.
        mask: (B, T) boolean, True on response tokens.
        row_tokens: (B, 1) active tokens per sequence.
        tokens: 0-d number of active tokens.
    """

    logp: Tensor
    log_ratio: Tensor
    ratio: Tensor
    adv: Tensor
    mask: Tensor
    row_tokens: Tensor
    tokens: Tensor

    def logp_values(self) -> Tensor:
        """Detached log π_θ in the compute dtype, 0 on padding (for objectives whose value holds log π)."""
        return torch.where(self.mask, self.logp.detach().to(self.log_ratio.dtype), 0.0)


def compute_dtype(*tensors: Tensor) -> torch.dtype:
    """float64 stays float64; everything else (bf16, fp16, float32) is computed in float32."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def prepare(logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor) -> TokenInputs:
    """Validate shapes and values, upcast, and compute the clamped log-ratio and the ratio.

    Args:
        logp: (B, T) log π_θ of the sampled tokens (carries the gradient).
        old_logp: (B, T) log π_old (treated as a constant).
        adv: (B,) per-sequence or (B, T) per-token advantages Â (treated as a constant).
        mask: (B, T) 1/True on response tokens, 0/False on padding (bool, integer or floating).

    Raises:
        TypeError: a non-tensor argument or a non-floating ``logp``.
        ValueError: a shape mismatch (naming both shapes), a mask value other than 0/1, or NaN/Inf on an
            active token. Padding may hold anything, NaN and ±Inf included.
    """
    for name, value in (("logp", logp), ("old_logp", old_logp), ("adv", adv), ("mask", mask)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    _check_shapes(logp, old_logp, adv, mask)
    dtype = compute_dtype(logp, old_logp)
    active = mask if mask.dtype == torch.bool else mask != 0  # (B, T)
    row_active = active.any(dim=1, keepdim=True)  # (B, 1): rows with at least one response token
    log_ratio = logp.detach().to(dtype) - old_logp.detach().to(dtype)  # (B, T)
    advantages = adv.detach().to(dtype)
    advantages = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages  # (B, 1) or (B, T)

    # One host sync for every check: a sum is finite iff all its summands are (or it overflowed), so only a
    # non-finite sum — NaN/Inf somewhere, perhaps on padding, where it is allowed — pays for the exact per-token
    # check that names the field.
    suspicious = ~torch.isfinite(log_ratio.sum() + advantages.sum())
    if mask.dtype != torch.bool:
        suspicious |= ((mask != 0) & (mask != 1)).any()
    if bool(suspicious):
        _exact_checks(logp, old_logp, advantages, mask, active)

    # Padding becomes a neutral token: log r = 0 (r = 1, inside every trust region) and Â = 0.
    log_ratio = torch.where(active, log_ratio, 0.0).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # (B, T)
    advantages = torch.where(active if advantages.shape == active.shape else row_active, advantages, 0.0)
    row_tokens = active.sum(dim=1, keepdim=True).to(dtype)  # (B, 1), counted as integers, then cast
    return TokenInputs(
        logp=logp,
        log_ratio=log_ratio,
        ratio=torch.exp(log_ratio),
        adv=advantages,
        mask=active,
        row_tokens=row_tokens,
        tokens=row_tokens.sum(),
    )


def _check_shapes(logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor) -> None:
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


def _exact_checks(logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor, active: Tensor) -> None:
    """The slow path, taken only when the one-sync probe saw a non-finite value or a bad mask: raise the precise
    error, or return when the non-finite values sit on padding only (or a finite sum overflowed)."""
    if mask.dtype != torch.bool and bool(((mask != 0) & (mask != 1)).any()):
        raise ValueError("mask must hold only 0 and 1 (or booleans)")
    for name, values in (("logp", logp), ("old_logp", old_logp), ("adv", advantages.expand(active.shape))):
        count = int((~torch.isfinite(values.detach()) & active).sum())
        if count:
            raise NonFiniteError(f"{name} holds NaN or Inf at {count} active position(s); expected finite values")


@dataclass(frozen=True)
class Regions:
    """Where each token lies: boolean masks of the ratio's side of the trust region and of the sign of Â.

    ``below``/``above`` are (B, T) for a token ratio (False on padding, where the ratio is 1), or (B, 1) for a
    sequence ratio (GSPO); ``negative``/``positive`` (Â < 0, Â > 0) are shaped like Â: (B, 1) or (B, T); the regions
    broadcast the two (each built once, on first use). ``dual_clipped`` marks the HN tokens with ``r > c`` whose
    gradient dual-clip stops (all False without dual-clip).
    """

    below: Tensor
    above: Tensor
    negative: Tensor
    positive: Tensor
    dual_clipped: Tensor

    @classmethod
    def classify(
        cls, ratio: Tensor, adv: Tensor, eps_low: float, eps_high: float, dual_clip_c: float | None = None
    ) -> Regions:
        """Regions of ``ratio`` ((B, T) or (B, 1)) and Â for the trust region [1−ε_low, 1+ε_high] (and dual-clip c)."""
        negative = adv < 0
        dual_clipped = negative & (ratio > dual_clip_c) if dual_clip_c is not None else torch.zeros_like(negative)
        return cls(
            below=ratio < 1 - eps_low, above=ratio > 1 + eps_high, negative=negative, positive=adv > 0,
            dual_clipped=dual_clipped,
        )  # fmt: skip

    @cached_property
    def ln(self) -> Tensor:
        return self.below & self.negative

    @cached_property
    def hp(self) -> Tensor:
        return self.above & self.positive

    @cached_property
    def lp(self) -> Tensor:
        return self.below & self.positive

    @cached_property
    def hn(self) -> Tensor:
        return self.above & self.negative

    def table(
        self,
        *,
        inside: Tensor,
        ln: Tensor | float,
        hp: Tensor | float,
        lp: Tensor | float,
        hn: Tensor | float,
    ) -> Tensor:
        """Each token's entry of a per-region table, as the papers write them: ``ln`` on LN, …, ``inside`` elsewhere.

        Tokens with Â = 0 take ``inside`` (no objective's gradient depends on their entry). An entry that *is*
        ``inside`` (the same object) costs nothing. Built with ``torch.where``, so an entry may be Inf or NaN
        where its region does not apply (e.g. ``r^(n+1)`` overflowing on tokens far above 1).
        """
        out = inside
        for region, entry in ((self.ln, ln), (self.hp, hp), (self.lp, lp), (self.hn, hn)):
            if entry is not inside:
                out = torch.where(region, entry, out)
        return out


class DecoupledSurrogate(torch.autograd.Function):
    """Per-token loss with value ``v`` and gradient ``∂/∂logp = −Â·w`` (in logp's dtype), zero on padding.

    It is the expression ``sg(v) − Â·sg(w)·(logp − sg(logp))`` written as an autograd function: autograd keeps one
    (B, T) tensor, the slope ``−Â·w``, and the backward is one multiplication; ``logp`` itself is never read, so
    whatever padding holds (NaN, −Inf) cannot reach a value or a gradient.
    """

    @staticmethod
    def forward(ctx, logp: Tensor, adv: Tensor, weight: Tensor, mask: Tensor, value: Tensor | None) -> Tensor:
        slope = torch.where(mask, -adv * weight, 0.0)  # (B, T): −Â·w on response tokens
        ctx.save_for_backward(slope)
        ctx.logp_dtype = logp.dtype
        # With ``value`` None (v = −Â·w) the output is the slope itself: one (B, T) tensor for value and gradient.
        return slope if value is None else torch.where(mask, value, 0.0)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None, None, None]:
        (slope,) = ctx.saved_tensors
        return (grad * slope).to(ctx.logp_dtype), None, None, None, None


def decoupled_surrogate(x: TokenInputs, weight: Tensor, value: Tensor | None = None) -> Tensor:
    """The (B, T) per-token loss: value ``v`` (``−Â·w`` when None), gradient ``∂/∂logp = −Â·w``, zero on padding.

    ``weight`` (B, T) or (B, 1) and ``value`` (B, T) or (B, 1) are detached and finite on response tokens.
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
