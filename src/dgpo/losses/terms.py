"""What an objective returns beside its loss: the tensors it was built from, and its metrics on request.

An objective call returns ``(per_token_loss, terms)``. ``terms`` is an :class:`ObjectiveTerms`: it holds the checked
inputs, the weight and the regions — tensors the loss needed anyway — and computes the metric dict of
docs/metrics.md only when it is first read (``terms.metrics()``, or reading it as the mapping it is:
``terms["region/ln"]``, ``dict(terms)``). A trainer that does not log a micro-batch pays nothing for its metrics,
and the values stay 0-d tensors on the loss's device until the trainer reduces them (no host sync).

Every value is over *active* tokens and is 0 — never NaN — when no token is active, so an all-padding micro-batch
logs zeros instead of poisoning running means.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

from dgpo.losses.core import Regions, TokenInputs
from dgpo.metrics import (
    GRAD_ABS_SUM,
    KL_K1_OLD,
    OBJECTIVE_METRIC_KEYS,
    RATIO_MAX,
    RATIO_MEAN,
    REGION_DUAL_CLIPPED,
    TOKENS_ACTIVE,
    TOKENS_NONZERO_ADV,
    WEIGHT_LN_VS_PG_MAX,
    WEIGHT_VS_PG_MAX,
    WEIGHT_VS_PG_MEAN,
)

#: The four regions outside the trust region, in the order of the metric keys.
_REGIONS = ("ln", "hp", "lp", "hn")
#: Floor of a denominator that is 0 only when its numerators are (no gradient at all): the shares are then 0.
_TINY = 1e-30


@dataclass(frozen=True)
class ObjectiveTerms(Mapping[str, Tensor]):
    """The terms of one objective call; read as a mapping, it is the metric dict (computed once, on first read).

    Attributes:
        inputs: the checked inputs (:func:`dgpo.losses.core.prepare`).
        weight: the (B, T) or (B, 1) log-prob-gradient weight ``w`` (``∂loss/∂logp = −Â·w``).
        regions: where each token lies (:class:`dgpo.losses.core.Regions`).
        region_ratio: the ratio the regions were decided on, when it is not the token ratio (GSPO's (B, 1)
            sequence ratio); ``ratio/*`` then report it, weighted by each sequence's tokens.
    """

    inputs: TokenInputs
    weight: Tensor
    regions: Regions
    region_ratio: Tensor | None = None

    def metrics(self) -> dict[str, Tensor]:
        """The metric dict of docs/metrics.md, every entry a detached 0-d tensor."""
        return self._metrics

    def __getitem__(self, key: str) -> Tensor:
        return self._metrics[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._metrics)

    def __len__(self) -> int:
        return len(self._metrics)

    @cached_property
    def _metrics(self) -> dict[str, Tensor]:
        with torch.no_grad():
            return _compute_metrics(self.inputs, self.weight, self.regions, self.region_ratio)


def _compute_metrics(x: TokenInputs, weight: Tensor, regions: Regions, region_ratio: Tensor | None) -> dict:
    """``ratio/*``, ``region/*`` and ``kl/k1_old`` are over active tokens (the four regions, ``region/inside`` and
    ``region/zero_adv`` add up to 1); ``weight/*`` only over active tokens with Â ≠ 0, since a zero-advantage token has
    no gradient to weigh. The weight is reported relative to plain PG, ``w/r``: the one number that compares
    objectives. The counts ``tokens/*`` let callers combine micro-batches and processes exactly
    (:class:`dgpo.metrics.MetricTotals`).

    One function per group, so each group's (B, T) temporaries are freed before the next is built: on a CPU every
    (B, T) tensor alive at once is fresh memory, and its page faults cost more than the arithmetic (at (64, 8192),
    2 threads, the regions' sums as four masked (B, T) tensors took 5.2 ms, as per-row side sums 0.7 ms).
    """
    tokens = x.tokens.clamp_min(1)
    nonzero_tokens = _masked_sum(x.adv != 0, None, x)  # active tokens with Â ≠ 0: the ones with a gradient
    metrics = _ratio_metrics(x, tokens, region_ratio)

    counts = _region_sums(regions, None, x)
    metrics["region/inside"] = (nonzero_tokens - sum(counts.values())) / tokens
    for name in _REGIONS:
        metrics[f"region/{name}"] = counts[name] / tokens
    metrics["region/zero_adv"] = (x.tokens - nonzero_tokens) / tokens
    metrics[REGION_DUAL_CLIPPED] = _masked_sum(regions.dual_clipped, None, x) / tokens

    metrics.update(_weight_metrics(x, weight, regions, nonzero_tokens))

    # Where the gradient goes: each region's share of Σ|Â·w|, the magnitude of ∂loss/∂logp (weights are ≥ 0).
    abs_grad = torch.where(x.mask, x.adv.abs() * weight, 0.0)  # (B, T): |Â·w| on active tokens
    abs_grad_sum = abs_grad.sum()
    shares = _region_sums(regions, abs_grad, x)
    del abs_grad
    metrics["grad_share/inside"] = (abs_grad_sum - sum(shares.values())) / abs_grad_sum.clamp_min(_TINY)
    for name in _REGIONS:
        metrics[f"grad_share/{name}"] = shares[name] / abs_grad_sum.clamp_min(_TINY)

    metrics[TOKENS_ACTIVE] = x.tokens
    metrics[TOKENS_NONZERO_ADV] = nonzero_tokens
    metrics[GRAD_ABS_SUM] = abs_grad_sum
    return {key: metrics[key] for key in OBJECTIVE_METRIC_KEYS}  # in the documented order


def _ratio_metrics(x: TokenInputs, tokens: Tensor, region_ratio: Tensor | None) -> dict[str, Tensor]:
    """``ratio/mean``, ``ratio/max`` (of the ratio the regions were decided on) and ``kl/k1_old``."""
    if region_ratio is None:  # the token ratio
        ratio = torch.where(x.mask, x.ratio, 0.0)  # (B, T)
        ratio_sum, ratio_max = ratio.sum(), ratio.max()
    else:  # a (B, 1) sequence ratio (GSPO), weighted by each row's active tokens
        ratio_sum = (region_ratio * x.row_tokens).sum()
        ratio_max = torch.where(x.row_tokens > 0, region_ratio, 0.0).max()
    # log r is 0 on padding, so its plain sum is the sum over active tokens.
    return {RATIO_MEAN: ratio_sum / tokens, RATIO_MAX: ratio_max, KL_K1_OLD: -x.log_ratio.sum() / tokens}


def _weight_metrics(x: TokenInputs, weight: Tensor, regions: Regions, nonzero_tokens: Tensor) -> dict[str, Tensor]:
    """``weight/*``: the weight relative to plain PG, ``w/r``, over active tokens with Â ≠ 0 (all ≥ 0)."""
    vs_pg = torch.where(x.mask & (x.adv != 0), weight / x.ratio, 0.0)  # (B, T)
    return {
        WEIGHT_VS_PG_MEAN: vs_pg.sum() / nonzero_tokens.clamp_min(1),
        WEIGHT_VS_PG_MAX: vs_pg.max(),
        WEIGHT_LN_VS_PG_MAX: torch.where(regions.ln, vs_pg, 0.0).max(),
    }


def _region_sums(regions: Regions, values: Tensor | None, x: TokenInputs) -> dict[str, Tensor]:
    """Σ of ``values`` ((B, T), 0 on padding; None counts tokens) over each region's active tokens, 0-d each."""
    if regions.negative.shape[-1] == 1:
        # Per-sequence Â: a region is one side of the trust region within the rows of one sign of Â, so its sum
        # is the rows' sums over that side, split by their sign.
        below, above = _side_row_sums(regions.below, values, x), _side_row_sums(regions.above, values, x)  # (B, 1)
        negative, positive = regions.negative, regions.positive  # (B, 1)
        return {
            "ln": (below * negative).sum(),
            "hp": (above * positive).sum(),
            "lp": (below * positive).sum(),
            "hn": (above * negative).sum(),
        }
    return {name: _masked_sum(getattr(regions, name), values, x) for name in _REGIONS}  # per-token Â: (B, T)


def _side_row_sums(side: Tensor, values: Tensor | None, x: TokenInputs) -> Tensor:
    """(B, 1): each row's Σ ``values`` (None: its token count) over the tokens on one ``side`` of the trust region."""
    if side.shape[-1] == 1:  # a decision per sequence (GSPO's ratio): the whole row
        return side * (x.row_tokens if values is None else values.sum(dim=1, keepdim=True))
    return _masked_sum(side, values, x, dim=1)  # a token ratio's side is False on padding (r = 1 there)


def _masked_sum(region: Tensor, values: Tensor | None, x: TokenInputs, dim: int | None = None) -> Tensor:
    """Σ ``values`` ((B, T); None: a token count) over a boolean region's active tokens, in the compute dtype, over
    ``dim`` (kept) or everything. A (B, T) region is False on padding by construction (r = 1 and Â = 0 there);
    a (B, 1) decision is spread over its row's active tokens."""
    if region.shape != x.mask.shape:
        region = region & x.mask
    summed = region if values is None else torch.where(region, values, 0.0)
    total = summed.sum() if dim is None else summed.sum(dim=dim, keepdim=True)
    return total.to(x.ratio.dtype)
