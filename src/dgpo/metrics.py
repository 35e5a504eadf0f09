"""The metric keys every objective returns (documented in docs/metrics.md).

The values are computed by :func:`dgpo.losses.base.objective_metrics` over *active* tokens and are 0 — never
NaN — when no token is active, so an all-padding micro-batch logs zeros instead of poisoning running means.
"""

from __future__ import annotations

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
