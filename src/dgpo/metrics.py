"""The metric keys every objective returns (documented in docs/metrics.md), and their exact global reduction.

The values are computed by :class:`dgpo.losses.terms.ObjectiveTerms`, on request, over *active* tokens and are 0 — never
NaN — when no token is active, so an all-padding micro-batch logs zeros instead of poisoning running means.

Each key is one of three kinds, which decides how values from several micro-batches and processes combine into
the value of the one big batch (:class:`MetricTotals`): a **mean** over a count that is itself a key
(``region/ln`` over ``tokens/active``, ``weight/vs_pg_mean`` over ``tokens/nonzero_adv``), a **max**, or a **count**
(summed). A mean of per-micro-batch means is not that value whenever the micro-batches hold different numbers of
tokens, and a mean of maxima is not a maximum.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor

RATIO_MEAN = "ratio/mean"
RATIO_MAX = "ratio/max"
REGION_KEYS = ("region/inside", "region/ln", "region/hp", "region/lp", "region/hn", "region/zero_adv")
#: Active tokens with Â < 0 and r > dual_clip_c, whose gradient dual-clip stops (0 without dual-clip; verl's
#: ``pg_clipfrac_lower``). Not one of the partition above: these tokens are also in ``region/hn``.
REGION_DUAL_CLIPPED = "region/dual_clipped"
#: Mean over active tokens of −log r (the clamped log-ratio): the k1 estimate of KL(π_old ‖ π_θ), verl's ``ppo_kl``.
KL_K1_OLD = "kl/k1_old"
WEIGHT_VS_PG_MEAN = "weight/vs_pg_mean"
WEIGHT_VS_PG_MAX = "weight/vs_pg_max"
WEIGHT_LN_VS_PG_MAX = "weight/ln_vs_pg_max"
#: Active (response) tokens of the call, and those of them with Â ≠ 0: the denominators of the mean keys.
TOKENS_ACTIVE = "tokens/active"
TOKENS_NONZERO_ADV = "tokens/nonzero_adv"
#: Where the gradient goes: each region's share of Σ|Â·w| over active tokens (the log-prob-gradient magnitude).
GRAD_SHARE_KEYS = ("grad_share/inside", "grad_share/ln", "grad_share/hp", "grad_share/lp", "grad_share/hn")
#: Σ|Â·w| over active tokens: the denominator of the ``grad_share/*`` keys.
GRAD_ABS_SUM = "grad/abs_sum"

#: Keys of the metrics dict returned by every objective in :mod:`dgpo.losses`.
OBJECTIVE_METRIC_KEYS = (
    RATIO_MEAN,
    RATIO_MAX,
    *REGION_KEYS,
    REGION_DUAL_CLIPPED,
    KL_K1_OLD,
    WEIGHT_VS_PG_MEAN,
    WEIGHT_VS_PG_MAX,
    WEIGHT_LN_VS_PG_MAX,
    *GRAD_SHARE_KEYS,
    TOKENS_ACTIVE,
    TOKENS_NONZERO_ADV,
    GRAD_ABS_SUM,
)

#: mean key -> the count key it is a mean over.
MEAN_OVER = {
    RATIO_MEAN: TOKENS_ACTIVE,
    **dict.fromkeys((*REGION_KEYS, REGION_DUAL_CLIPPED, KL_K1_OLD), TOKENS_ACTIVE),
    WEIGHT_VS_PG_MEAN: TOKENS_NONZERO_ADV,
    **dict.fromkeys(GRAD_SHARE_KEYS, GRAD_ABS_SUM),
}
MAX_KEYS = (RATIO_MAX, WEIGHT_VS_PG_MAX, WEIGHT_LN_VS_PG_MAX)
#: Summed keys: the two token counts and Σ|Â·w|.
COUNT_KEYS = (TOKENS_ACTIVE, TOKENS_NONZERO_ADV, GRAD_ABS_SUM)

#: Trust region used only to *label* regions for objectives that have none of their own (``pg``, ``sapo``),
#: so their region fractions stay comparable with the clipped objectives' defaults.
DIAGNOSTIC_EPS = 0.2

#: ``fn(tensor) -> tensor``: an element-wise reduction across processes (sum or max), e.g. an all-reduce.
Reduction = Callable[[Tensor], Tensor]


class MetricTotals:
    """Running sums, counts and maxima of metric dicts, reduced to the metrics of the one big batch.

    ``add`` each micro-batch's dict (no host sync: totals stay tensors on the metrics' device); ``reduce`` once per
    log, giving every mean key as Σ(mean·count)/Σcount, every max key as the max, every count as the sum — over all
    added dicts and, with ``sum_all``/``max_all`` (all-reduces), over all processes. Other keys are declared:
    ``mean_over`` maps a mean key to its count key (the trainer's ``entropy`` is a mean over ``tokens/active``),
    ``summed`` lists keys that are plain sums like the counts.
    """

    def __init__(self, mean_over: Mapping[str, str] | None = None, summed: tuple[str, ...] = ()):
        self.mean_over = {**MEAN_OVER, **(mean_over or {})}
        self.summed = (*COUNT_KEYS, *summed)
        self.sums: dict[str, Tensor] = {}
        self.maxima: dict[str, Tensor] = {}

    def add(self, metrics: Mapping[str, Tensor]) -> None:
        for key, value in metrics.items():
            value = _accumulable(value)
            if key in MAX_KEYS:
                previous = self.maxima.get(key)
                self.maxima[key] = value if previous is None else torch.maximum(previous, value)
                continue
            if key in self.mean_over:  # a mean: accumulate its numerator, the sum over its count's tokens
                value = value * _accumulable(metrics[self.mean_over[key]])
            elif key not in self.summed:
                raise KeyError(f"metric {key!r} has no reduction: declare it as a mean, max or summed key")
            self.sums[key] = self.sums[key] + value if key in self.sums else value

    def reduce(self, sum_all: Reduction | None = None, max_all: Reduction | None = None) -> dict[str, float]:
        """The metrics of everything added since the last reduce (then cleared); {} when nothing was added.

        Every process must call it with the same keys added (one collective for the sums, one for the maxima).
        """
        sum_keys, max_keys = sorted(self.sums), sorted(self.maxima)
        sums = torch.stack([self.sums[k] for k in sum_keys]) if sum_keys else None
        maxima = torch.stack([self.maxima[k] for k in max_keys]) if max_keys else None
        if sums is not None and sum_all is not None:
            sums = sum_all(sums)
        if maxima is not None and max_all is not None:
            maxima = max_all(maxima)
        totals = dict(zip(sum_keys, sums.tolist() if sums is not None else [], strict=True))
        out = {key: totals[key] for key in sum_keys if key not in self.mean_over}
        for key in sum_keys:
            if key in self.mean_over:
                count = totals[self.mean_over[key]]
                out[key] = totals[key] / count if count > 0 else 0.0
        out.update(zip(max_keys, maxima.tolist() if maxima is not None else [], strict=True))
        self.sums.clear()
        self.maxima.clear()
        return out


def _accumulable(value: Tensor | float) -> Tensor:
    """A detached float64 tensor on the value's device: float32 sums of token counts stop being exact past 2²⁴
    (16.7M tokens, a few large steps). MPS has no float64, so it keeps float32 there."""
    value = torch.as_tensor(value).detach()
    return value.to(torch.float32 if value.device.type == "mps" else torch.float64)
