"""Validation of the dgpo-specific training choices, shared by ``DGPOConfig`` and ``dgpo train`` (no TRL import)."""

from __future__ import annotations

from typing import Any

from dgpo.advantages import ADVANTAGES
from dgpo.aggregation import AGGREGATIONS
from dgpo.losses import Objective, get_loss


def check_choices(objective: str, objective_kwargs: dict[str, Any], advantage: str, aggregation: str) -> Objective:
    """The configured objective; raises ValueError naming the bad value and the valid ones."""
    if advantage not in ADVANTAGES:
        raise ValueError(f"unknown advantage {advantage!r}; valid advantages: {', '.join(ADVANTAGES)}")
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; valid aggregations: {', '.join(AGGREGATIONS)}")
    return get_loss(objective, **objective_kwargs)
