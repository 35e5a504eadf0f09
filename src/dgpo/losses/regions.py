"""The five regions of DESIGN.md §2 as float 0/1 indicators, and their token counts.

Indicators are float tensors, not booleans, because on CPU a comparison that writes a bool tensor, a bool→float
cast or a ``torch.where`` each cost 4–7 float multiplications (docs/benchmarks.md); with floats every region
selection is one multiply (``LN = below·negative``, ``HP = above·positive``), exact for 0/1 factors and finite
values. ``[x > 0]`` is ``sign(relu(x))``, exact in IEEE arithmetic (``a − b > 0`` iff ``a > b``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor


def indicator_below(values: Tensor, bound: float) -> Tensor:
    """1.0 where ``values < bound``, else 0.0 (same shape and dtype)."""
    return torch.rsub(values, bound).relu_().sign_()


def indicator_above(values: Tensor, bound: float) -> Tensor:
    """1.0 where ``values > bound``, else 0.0 (same shape and dtype)."""
    return torch.sub(values, bound).relu_().sign_()


@dataclass(frozen=True)
class Regions:
    """Region indicators decided on a ratio and the sign of Â.

    ``below``/``above`` are 1.0 where the ratio is below ``1 − ε_low`` / above ``1 + ε_high``; ``negative`` is 1.0
    where Â < 0. Shapes are (B, T) for a token ratio (0 on padding, where the ratio is 1) or (B, 1) for a sequence
    ratio (GSPO); ``negative`` is (B, 1) or (B, T) like Â. Tokens with Â = 0 are labelled positive (LP/HP): they get
    zero gradient in every objective anyway.
    """

    below: Tensor
    above: Tensor
    negative: Tensor

    @classmethod
    def classify(cls, ratio: Tensor, adv: Tensor, eps_low: float, eps_high: float) -> Regions:
        return cls(
            below=indicator_below(ratio, 1.0 - eps_low),
            above=indicator_above(ratio, 1.0 + eps_high),
            negative=indicator_below(adv, 0.0),
        )

    @cached_property
    def positive(self) -> Tensor:
        return 1.0 - self.negative

    def kept(self) -> Tensor:
        """A new tensor, 1.0 except on LN and HP (the tokens a hard clip stops), where it is 0.0."""
        clipped = torch.mul(self.below, self.negative).addcmul_(self.above, self.positive)
        return clipped.neg_().add_(1.0)

    def counts(self, mask: Tensor, row_tokens: Tensor, tokens: Tensor) -> tuple[Tensor, ...]:
        """Active-token counts of (inside, LN, HP, LP, HN), each a 0-d tensor.

        Args:
            mask: (B, T) 0/1 active tokens. row_tokens: (B, 1) their count per sequence. tokens: the 0-d total.
        """
        below, above = _per_row(self.below, row_tokens), _per_row(self.above, row_tokens)
        if self.negative.shape[-1] == 1:
            ln, hn = (below * self.negative).sum(), (above * self.negative).sum()
        else:  # per-token Â (rare): (B, T) products, masked since a (B, 1) indicator also covers padding
            ln, hn = (self.below * self.negative * mask).sum(), (self.above * self.negative * mask).sum()
        below_total, above_total = below.sum(), above.sum()
        return tokens - below_total - above_total, ln, above_total - hn, below_total - ln, hn


def _per_row(indicator: Tensor, row_tokens: Tensor) -> Tensor:
    """(B, 1) active count of a (B, T) indicator that is 0 on padding, or of a (B, 1) per-sequence one."""
    if indicator.shape[-1] == 1:
        return indicator * row_tokens
    return indicator.sum(dim=1, keepdim=True)
