"""Input checks and the log-ratio shared by every objective: :func:`prepare` and :class:`TokenInputs`.

Speed matters here: this runs on every micro-batch, on (B, T) up to 64 × 8192 and more. So the checks are built
from passes the objective needs anyway plus one host sync (docs/benchmarks.md):

* a sum is finite iff every summand is finite (or the sum overflowed), so one reduction over ``logp − old_logp``
  and ``Â`` tells whether *any* input is NaN/Inf; only then does the exact per-token check run, to name the field
  and to tell active tokens (an error) from padding (ignored);
* the mask is checked with ``aminmax`` and a dot product instead of element-wise comparisons, which are several
  times slower than float arithmetic on CPU and allocate (every fresh (B, T) tensor costs page faults there).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

#: |log r| is clamped to this before ``exp`` (docs/design.md §2): r stays in [e⁻²⁰, e²⁰], finite in float32.
LOG_RATIO_CLAMP = 20.0


@dataclass(frozen=True)
class TokenInputs:
    """Checked inputs of one objective call, in the compute dtype (:func:`compute_dtype`).

    Attributes:
        logp: the caller's (B, T) log π_θ, which carries the gradient. Never read on padding.
        log_ratio: (B, T) ``clamp(logp − old_logp, ±20)``, detached; exactly 0 on padding.
        ratio: (B, T) ``exp(log_ratio)``; exactly 1 on padding, which lies inside every trust region, so region
            indicators are 0 on padding without masking.
        adv: Â as a (B, 1) column (per-sequence) or (B, T) (per-token, 0 on padding); detached.
        mask: (B, T) 1.0 on response tokens, 0.0 on padding.
        row_tokens: (B, 1) active tokens per sequence.
        tokens: 0-d number of active tokens.
        all_finite: every input value, padding included, is finite (then masking by multiplication is safe).
    """

    logp: Tensor
    log_ratio: Tensor
    ratio: Tensor
    adv: Tensor
    mask: Tensor
    row_tokens: Tensor
    tokens: Tensor
    all_finite: bool

    def logp_values(self) -> Tensor:
        """Detached log π_θ in the compute dtype, 0 on padding (for objectives whose value holds log π)."""
        values = self.logp.detach().to(self.mask.dtype)
        if self.all_finite:
            return values * self.mask
        return torch.where(self.mask.bool(), values, torch.zeros((), dtype=values.dtype, device=values.device))


def _require_tensor(name: str, value: object) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def _require_finite(name: str, values: Tensor, active: Tensor) -> None:
    count = int((~torch.isfinite(values) & active).sum())
    if count:
        raise ValueError(f"{name} holds NaN or Inf at {count} active position(s); expected finite values")


def compute_dtype(*tensors: Tensor) -> torch.dtype:
    """float64 stays float64; everything else (bf16, fp16, float32) is computed in float32."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


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


def _mask_is_invalid(mask: Tensor, active: Tensor, tokens: Tensor) -> Tensor | None:
    """A 0-d bool tensor, true when ``mask`` holds anything but 0 and 1 (None for bool or empty masks).

    ``active`` is the mask in the compute dtype and ``tokens`` its sum. Without allocating a (B, T) tensor: the
    values lie in [0, 1] (``aminmax``) and, since m² ≤ m there with equality only at 0 and 1, Σm² = Σm. NaN fails
    both. Sums of 0/1 values are exact integers up to 2²⁴ (float32) active tokens; beyond that a mismatch only
    sends the call to the exact check.
    """
    if mask.dtype == torch.bool or mask.numel() == 0:
        return None
    low, high = torch.aminmax(mask)
    invalid = (low < 0) | (high > 1)
    if mask.is_floating_point():
        flat = active.reshape(-1)
        invalid = invalid | (torch.dot(flat, flat) != tokens)
    return invalid


def prepare(logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor) -> TokenInputs:
    """Validate shapes and values, upcast, and compute the clamped log-ratio and ratio.

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
    logp = _require_tensor("logp", logp)
    old_logp = _require_tensor("old_logp", old_logp)
    adv = _require_tensor("adv", adv)
    mask = _require_tensor("mask", mask)
    _check_shapes(logp, old_logp, adv, mask)

    dtype = compute_dtype(logp, old_logp)
    active = mask.to(dtype)
    row_tokens = active.sum(dim=1, keepdim=True)
    tokens = row_tokens.sum()
    ratio_buffer = None
    if logp.dtype == dtype:
        log_ratio = torch.sub(logp.detach(), old_logp.detach())
    else:  # upcast both first (a mixed-dtype subtraction is ~20x slower on CPU); the upcast old_logp's buffer
        # then receives the ratio, so the upcast costs no extra (B, T) allocation
        ratio_buffer = old_logp.detach().to(dtype, copy=True)
        log_ratio = logp.detach().to(dtype).sub_(ratio_buffer)
    advantages = adv.detach().to(dtype)
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1)

    suspicious = ~torch.isfinite(log_ratio.sum() + advantages.sum())
    mask_invalid = _mask_is_invalid(mask, active, tokens)
    if mask_invalid is not None:
        suspicious = suspicious | mask_invalid
    all_finite = not bool(suspicious)  # the one host sync of the checks
    if all_finite:
        log_ratio.mul_(active)
        if advantages.shape == log_ratio.shape:
            advantages = advantages * active
    else:
        log_ratio, advantages = _exact_checks(logp, old_logp, advantages, mask, log_ratio)
    log_ratio.clamp_(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    return TokenInputs(
        logp=logp,
        log_ratio=log_ratio,
        ratio=torch.exp(log_ratio, out=ratio_buffer) if ratio_buffer is not None else torch.exp(log_ratio),
        adv=advantages,
        mask=active,
        row_tokens=row_tokens,
        tokens=tokens,
        all_finite=all_finite,
    )


def _exact_checks(
    logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor, log_ratio: Tensor
) -> tuple[Tensor, Tensor]:
    """The slow path, taken only when the cheap probe saw a non-finite value or a bad mask.

    Raises the precise error, or — when the non-finite values sit on padding only (or a finite sum overflowed) —
    returns the log-ratio and advantages with padding replaced by 0.
    """
    active = mask != 0
    if mask.dtype != torch.bool and bool((active & (mask != 1)).any()):
        raise ValueError("mask must hold only 0 and 1 (or booleans)")
    _require_finite("logp", logp.detach(), active)
    _require_finite("old_logp", old_logp.detach(), active)
    _require_finite("adv", advantages.expand_as(log_ratio), active)
    zero = torch.zeros((), dtype=log_ratio.dtype, device=log_ratio.device)
    # Keep Â's shape: a (B, 1) column stays a column (fully padded sequences get 0).
    adv_active = active if advantages.shape == active.shape else active.any(dim=1, keepdim=True)
    return torch.where(active, log_ratio, zero), torch.where(adv_active, advantages, zero)
