"""Masked reductions and the metric keys every objective returns (documented in docs/metrics.md).

All reductions run over *active* tokens (``mask`` true) and return 0 — never NaN — when no token is active,
so an all-padding micro-batch logs zeros instead of poisoning running means.
"""

from __future__ import annotations

import torch
from torch import Tensor

RATIO_MEAN = "ratio/mean"
RATIO_MAX = "ratio/max"
REGION_KEYS = ("region/inside", "region/ln", "region/hp", "region/lp", "region/hn")
WEIGHT_VS_PG_MEAN = "weight/vs_pg_mean"
WEIGHT_VS_PG_MAX = "weight/vs_pg_max"
WEIGHT_LN_VS_PG_MAX = "weight/ln_vs_pg_max"

#: Keys of the metrics dict returned by every objective in :mod:`dgpo.losses`.
OBJECTIVE_METRIC_KEYS = (
    RATIO_MEAN,
    RATIO_MAX,
    *REGION_KEYS,
    WEIGHT_VS_PG_MEAN,
    WEIGHT_VS_PG_MAX,
    WEIGHT_LN_VS_PG_MAX,
)

#: Trust region used only to *label* regions for objectives that have none of their own (``pg``, ``sapo``),
#: so their region fractions stay comparable with the clipped objectives' defaults.
DIAGNOSTIC_EPS = 0.2


def masked_sum(values: Tensor, mask: Tensor) -> Tensor:
    """Sum of ``values`` over positions where the boolean ``mask`` is true (same shapes)."""
    return torch.where(mask, values, torch.zeros((), dtype=values.dtype, device=values.device)).sum()


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` over active positions; 0 when none is active."""
    count = mask.sum().clamp_min(1)
    return masked_sum(values, mask) / count


def masked_max(values: Tensor, mask: Tensor) -> Tensor:
    """Max of ``values`` over active positions; 0 when none is active (no host sync: the guard is a tensor op)."""
    lowest = torch.full((), float("-inf"), dtype=values.dtype, device=values.device)
    best = torch.where(mask, values, lowest).max()
    return torch.where(mask.any(), best, torch.zeros_like(best))


def masked_fraction(selected: Tensor, mask: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """Fraction (in ``dtype``) of active positions where the boolean ``selected`` is true; 0 when none is active."""
    return (selected & mask).sum().to(dtype) / mask.sum().clamp_min(1).to(dtype)
