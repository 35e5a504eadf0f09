"""Reduce a (B, T) per-token loss to a scalar, with verl's four modes (names as verl's ``loss_agg_mode``).

Pass the *global* counts (tokens or sequences over the whole optimiser step, all micro-batches and ranks) and
the sum of the micro-batch losses has the same gradient for any micro-batch × accumulation split. Without them,
the counts of this call are used. Imports torch only.
"""

from __future__ import annotations

import torch
from torch import Tensor

AGGREGATIONS = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")


def check_aggregation(mode: str) -> None:
    """Raise ``ValueError`` naming an unknown aggregation and the valid ones."""
    if mode not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {mode!r}; valid aggregations: {', '.join(AGGREGATIONS)}")


def _count(value: int | float | Tensor | None, local: Tensor, name: str) -> Tensor:
    if value is None:
        return local.clamp_min(1)
    count = torch.as_tensor(value, dtype=local.dtype, device=local.device)
    if not bool(count > 0):
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return count


def aggregate(
    per_token_loss: Tensor,
    mask: Tensor,
    mode: str = "token-mean",
    *,
    global_tokens: int | float | Tensor | None = None,
    global_seqs: int | float | Tensor | None = None,
    norm_length: int | float | None = None,
) -> Tensor:
    """Aggregate ``per_token_loss`` (B, T) over ``mask`` (B, T).

    Modes:
        ``token-mean``: ``Σ_{b,t} l·m / N_tokens`` (DAPO; ``N_tokens`` = ``global_tokens`` or this mask's sum).
        ``seq-mean-token-mean``: ``Σ_b (Σ_t l·m / Σ_t m) / N_seqs`` (GRPO's original; GSPO).
        ``seq-mean-token-sum``: ``Σ_b Σ_t l·m / N_seqs``.
        ``seq-mean-token-sum-norm``: ``Σ_b Σ_t l·m / N_seqs / L`` with a constant ``L`` = ``norm_length``
        (default T, as verl) — Dr. GRPO's length-independent normaliser.

    Fully masked sequences are not sequences: they carry no loss and are excluded from ``N_seqs`` (the convention
    of every split, so ``global_seqs`` must count the *non-empty* sequences of the whole step — DGPOTrainer gathers
    that count over processes). With nothing active the result is 0, never NaN.
    """
    check_aggregation(mode)
    if per_token_loss.dim() != 2 or mask.shape != per_token_loss.shape:
        raise ValueError(
            f"mask shape {tuple(mask.shape)} must equal per_token_loss shape {tuple(per_token_loss.shape)} (B, T)"
        )
    # Converted up front (a no-op when the dtypes match): mixed-dtype products are ~20x slower on CPU.
    weights = mask.to(per_token_loss.dtype)
    token_sums = (per_token_loss * weights).sum(dim=1)
    tokens_per_seq = weights.sum(dim=1)
    if mode == "token-mean":
        return token_sums.sum() / _count(global_tokens, tokens_per_seq.sum(), "global_tokens")
    seqs = _count(global_seqs, (tokens_per_seq > 0).to(weights.dtype).sum(), "global_seqs")
    if mode == "seq-mean-token-mean":
        return (token_sums / tokens_per_seq.clamp_min(1)).sum() / seqs
    loss = token_sums.sum() / seqs
    if mode == "seq-mean-token-sum-norm":
        length = per_token_loss.shape[1] if norm_length is None else norm_length
        if not length > 0:
            raise ValueError(f"norm_length must be > 0, got {norm_length!r}")
        loss = loss / length
    return loss
