"""The four regions outside the trust region (docs/design.md §3), as 0/1 masks, and ``select`` to use them.

With ``r = π_θ/π_old`` and the trust region ``[1 − ε_low, 1 + ε_high]``:

=====  =====================  ======================================================
LN     Â < 0, r < 1 − ε_low   a bad token already made much less likely (hard clip stops it)
HP     Â > 0, r > 1 + ε_high  a good token already made much more likely (hard clip stops it)
LP     Â > 0, r < 1 − ε_low   a good token that became less likely (never clipped by PPO)
HN     Â < 0, r > 1 + ε_high  a bad token that became more likely (only dual-clip stops it)
=====  =====================  ======================================================

Every other active token with Â ≠ 0 is *inside*. Tokens with Â = 0 belong to no region: their gradient is zero in
every objective, so counting them as clipped would report clipping that changes nothing (verl's ``pg_clipfrac``
does not count them either); the counts give them a bucket of their own, ``zero_adv``. Padding needs no masking:
:func:`dgpo.losses.inputs.prepare` sets the ratio to exactly 1 there, which lies inside every trust region.

Why 0/1 floats and not booleans: on CPU a comparison that writes a bool tensor or a bool→float cast costs about
four float multiplications, and ``torch.where`` over a (B, T) bool condition about fifteen (docs/benchmarks.md,
"Readable and fast"). With float masks, selecting, counting and masked maxima are single multiplications and sums.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def is_below(values: Tensor, bound: float) -> Tensor:
    """``values < bound`` as 0.0/1.0 in ``values``' dtype (exact: ``sign(bound − v)`` is +1 iff v < bound)."""
    return torch.rsub(values, bound).sign_().relu_()


def is_above(values: Tensor, bound: float) -> Tensor:
    """``values > bound`` as 0.0/1.0 in ``values``' dtype."""
    return torch.sub(values, bound).sign_().relu_()


def select(region: Tensor, in_region: Tensor | float, elsewhere: Tensor | float) -> Tensor:
    """``torch.where(region, in_region, elsewhere)`` for a 0/1 float ``region`` and finite values.

    Computed as ``lerp(elsewhere, in_region, region)``, which returns either input exactly at weights 0 and 1
    (for finite inputs; an Inf in the branch not taken would give NaN, so callers keep both branches finite).
    """
    elsewhere, in_region = (
        torch.as_tensor(elsewhere, dtype=region.dtype),
        torch.as_tensor(in_region, dtype=region.dtype),
    )
    return torch.lerp(elsewhere, in_region, region)


@dataclass(frozen=True)
class Regions:
    """Where each token lies: 0/1 masks of the ratio's side of the trust region and of the sign of Â.

    ``below``/``above`` are (B, T) for a token ratio (0 on padding, where the ratio is 1), or (B, 1) for a
    sequence ratio (GSPO); ``negative``/``positive`` (Â < 0, Â > 0) are shaped like Â: (B, 1) or (B, T). The
    four regions are their products, built only when an objective asks for one.
    """

    below: Tensor
    above: Tensor
    negative: Tensor
    positive: Tensor

    @classmethod
    def classify(cls, ratio: Tensor, adv: Tensor, eps_low: float, eps_high: float) -> Regions:
        """Regions of ``ratio`` ((B, T) or (B, 1)) and Â ((B, 1) or (B, T)) for the trust region [1−ε_low, 1+ε_high]."""
        return cls(
            below=is_below(ratio, 1.0 - eps_low),  # (B, T) or (B, 1): r < 1 − ε_low
            above=is_above(ratio, 1.0 + eps_high),  # (B, T) or (B, 1): r > 1 + ε_high
            negative=is_below(adv, 0.0),  # (B, 1) or (B, T): Â < 0
            positive=is_above(adv, 0.0),  # (B, 1) or (B, T): Â > 0
        )

    @property
    def ln(self) -> Tensor:
        return self.below * self.negative

    @property
    def hp(self) -> Tensor:
        return self.above * self.positive

    @property
    def lp(self) -> Tensor:
        return self.below * self.positive

    @property
    def hn(self) -> Tensor:
        return self.above * self.negative

    @property
    def zero_adv(self) -> Tensor:
        """1.0 where Â = 0, shaped like Â."""
        return 1.0 - self.negative - self.positive

    @property
    def clipped(self) -> Tensor:
        """LN or HP: the tokens a hard clip stops (the clipped branch of PPO's min is a constant there)."""
        return self.ln + self.hp

    def dual_clipped(self, ratio: Tensor, dual_clip_c: float) -> Tensor:
        """HN tokens with ``r > c``: dual-clip caps their loss at the constant ``−c·Â``, so they get no gradient."""
        return self.hn * is_above(ratio, dual_clip_c)

    def sums(self, values: Tensor, row_sums: Tensor) -> dict[str, Tensor]:
        """Σ of ``values`` over each region's tokens, 0-d tensors: ``ln``, ``hp``, ``lp``, ``hn``, ``zero_adv`` and
        ``inside`` (the rest); they add up to Σ values. With ``values`` the (B, T) mask they are token counts.

        Args: ``values`` (B, T), 0 on padding; ``row_sums`` (B, 1) its row sums.
        """
        if self.negative.shape[-1] == 1:  # per-sequence Â: each row's sum below/above, then split by Â's sign
            below, above = _row_sum(self.below, values, row_sums), _row_sum(self.above, values, row_sums)
            zero_adv = (self.zero_adv * row_sums).sum()
        else:  # per-token Â (B, T)
            below, above, zero_adv = self.below * values, self.above * values, (self.zero_adv * values).sum()
        totals = {
            "ln": (below * self.negative).sum(),
            "hp": (above * self.positive).sum(),
            "lp": (below * self.positive).sum(),
            "hn": (above * self.negative).sum(),
            "zero_adv": zero_adv,
        }
        totals["inside"] = row_sums.sum() - sum(totals.values())
        return totals


def _row_sum(side: Tensor, values: Tensor, row_sums: Tensor) -> Tensor:
    """(B, 1) per-row Σ of ``values`` where the 0/1 ``side`` is 1."""
    if side.shape[-1] == 1:  # a per-row decision (GSPO's sequence ratio): the whole row
        return side * row_sums
    return (side * values).sum(dim=1, keepdim=True)
