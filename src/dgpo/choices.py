"""The choices dgpo adds to a GRPO run — the objective and its parameters, the advantage, the aggregation, and the
optimiser passes per generation batch — with their defaults and their one check.

They sit below both places that configure a run: the TRL integration (``DGPOConfig`` in
:mod:`dgpo.integrations.trl`) and ``dgpo train`` (``RLConfig`` in :mod:`dgpo.train.run_config`) read their defaults
from here and validate with :func:`check_choices`, so that an integration depends on the core only, never on
``dgpo.train`` (tests/test_layout.py). No TRL import.
"""

from __future__ import annotations

from typing import Any

from dgpo.advantages import check_advantage
from dgpo.aggregation import check_aggregation
from dgpo.losses import get_loss

DEFAULT_OBJECTIVE = "dgpo"
DEFAULT_ADVANTAGE = "grpo"
DEFAULT_AGGREGATION = "token-mean"
#: Off-policy by default: every generation batch serves two optimiser passes, so the second sees a ratio
#: π_θ/π_old ≠ 1. At TRL's default of one pass the ratio is identically 1, every clipping objective reduces to
#: plain PG, and the choice of objective does not matter.
DEFAULT_NUM_ITERATIONS = 2


def check_choices(objective: str, objective_kwargs: dict[str, Any], advantage: str, aggregation: str) -> None:
    """Raise ``ValueError`` naming a bad advantage, aggregation, objective or objective parameter and the valid
    ones; a parameter of the wrong type raises the objective config's ``TypeError``."""
    check_advantage(advantage)
    check_aggregation(aggregation)
    get_loss(objective, **objective_kwargs)  # the objective's config dataclass checks its name, parameters, ranges
