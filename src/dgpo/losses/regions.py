"""The five regions of docs/design.md §3 as one signed float tensor, and their token counts.

Regions are float tensors, not booleans, because on CPU a comparison that writes a bool tensor, a bool→float
cast or a ``torch.where`` each cost 4–7 float multiplications, and every fresh (B, T) tensor costs page faults
(docs/benchmarks.md). So a single (B, T) tensor holds them all:

    side = sign(r − clamp(r, 1−ε_low, 1+ε_high)) ∈ {−1, 0, +1}   (below, inside, above the trust region)

exact in IEEE arithmetic (``clamp`` returns r itself inside, and ``a − b > 0`` iff ``a > b``). With the per-row
(or per-token) sign of Â, ``s = +1`` for Â ≥ 0 and ``−1`` for Â < 0, ``side·s = +1`` exactly on LN and HP (the
tokens a hard clip stops) and ``−1`` exactly on LP and HN; every region selection is then a multiply.

Tokens with Â = 0 belong to no region: their gradient is zero in every objective, so counting them as clipped would
report clipping that changes nothing (verl's ``pg_clipfrac`` does not count them either). The weights treat them as
positive (harmless: they are multiplied by Â = 0); the counts put them in a sixth bucket, ``zero_adv``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor


def indicator_above(values: Tensor, bound: float) -> Tensor:
    """1.0 where ``values > bound``, else 0.0 (a new tensor of the same shape and dtype)."""
    return torch.sub(values, bound).relu_().sign_()


def indicator_below(values: Tensor, bound: float) -> Tensor:
    """1.0 where ``values < bound``, else 0.0 (a new tensor of the same shape and dtype)."""
    return torch.rsub(values, bound).relu_().sign_()


@dataclass(frozen=True)
class Regions:
    """Regions decided on a ratio and the sign of Â.

    ``side`` is −1/0/+1 where the ratio is below ``1 − ε_low`` / inside / above ``1 + ε_high``: (B, T) for a token
    ratio (0 on padding, where the ratio is 1) or (B, 1) for a sequence ratio (GSPO). ``negative`` is 1.0 where
    Â < 0 and ``nonzero`` 1.0 where Â ≠ 0, both shaped like Â: (B, 1) or (B, T). For the weights, tokens with Â = 0
    are labelled positive (they get zero gradient in every objective anyway); :meth:`counts` gives them their own
    bucket.
    """

    side: Tensor
    negative: Tensor
    nonzero: Tensor

    @classmethod
    def classify(cls, ratio: Tensor, adv: Tensor, eps_low: float, eps_high: float) -> Regions:
        side = ratio.clamp(1.0 - eps_low, 1.0 + eps_high).sub_(ratio).neg_().sign_()
        return cls(side=side, negative=indicator_below(adv, 0.0), nonzero=torch.abs(adv).sign_())

    @cached_property
    def positive(self) -> Tensor:
        return 1.0 - self.negative

    @cached_property
    def adv_sign(self) -> Tensor:
        """+1 where Â ≥ 0, −1 where Â < 0 (shaped like Â)."""
        return self.positive - self.negative

    def below(self) -> Tensor:
        """A new tensor, 1.0 below the trust region (LN and LP), else 0.0."""
        return torch.neg(self.side).relu_()

    def above(self) -> Tensor:
        """A new tensor, 1.0 above the trust region (HP and HN), else 0.0."""
        return torch.relu(self.side)

    def clipped(self) -> Tensor:
        """A new tensor, 1.0 on LN and HP (the tokens a hard clip stops), else 0.0."""
        return torch.mul(self.side, self.adv_sign).relu_()

    def kept(self) -> Tensor:
        """A new tensor, 0.0 on LN and HP, else 1.0."""
        return self.clipped().neg_().add_(1.0)

    def dual_clip_kept(self, ratio: Tensor, dual_clip_c: float) -> Tensor:
        """A new tensor, 0.0 on Â < 0 tokens with ``ratio > c`` (dual-clip stops their gradient), else 1.0."""
        return indicator_above(ratio, dual_clip_c).mul_(self.negative).neg_().add_(1.0)

    def counts(self, mask: Tensor, row_tokens: Tensor, tokens: Tensor) -> tuple[Tensor, ...]:
        """Active-token counts of (inside, LN, HP, LP, HN, zero_adv), each a 0-d tensor; they add up to ``tokens``.

        Tokens with Â = 0 are counted in ``zero_adv`` only. Args:
            mask: (B, T) 0/1 active tokens. row_tokens: (B, 1) their count per sequence. tokens: the 0-d total.
        """
        if self.negative.shape[-1] != 1:  # per-token Â (rare): plain (B, T) products
            below, above, active = self.below() * mask, self.above() * mask, mask
        elif self.side.shape[-1] == 1:  # a per-sequence ratio: every active token of a row shares its region
            below, above, active = self.below() * row_tokens, self.above() * row_tokens, row_tokens
        else:  # per-row counts; side is 0 on padding, so per row Σ side = above − below and Σ side² = above + below
            signed = self.side.sum(dim=1, keepdim=True)
            squared = torch.bmm(self.side.unsqueeze(1), self.side.unsqueeze(2)).view_as(signed)
            below, above, active = (squared - signed) / 2, (squared + signed) / 2, row_tokens
        strictly_positive = self.nonzero - self.negative  # 1.0 where Â > 0
        ln, hn = (below * self.negative).sum(), (above * self.negative).sum()
        lp, hp = (below * strictly_positive).sum(), (above * strictly_positive).sum()
        zero_adv = (active * (1.0 - self.nonzero)).sum()
        return tokens - zero_adv - ln - hn - lp - hp, ln, hp, lp, hn, zero_adv

    def ln_max(self, active_values: Tensor) -> Tensor:
        """Max of a ≥ 0 (B, T) tensor over LN tokens, 0 when there are none. Overwrites ``active_values``, which
        must be 0 on padding (no new (B, T) tensor: the per-row max of ``−side·values`` is the max over the
        row's below-region tokens, or ≤ 0 when it has none)."""
        below_only = active_values.mul_(self.side).neg_()
        if self.negative.shape[-1] != 1:
            return below_only.relu_().mul_(self.negative).max()
        return (below_only.amax(dim=1, keepdim=True).clamp_min_(0.0) * self.negative).max()
