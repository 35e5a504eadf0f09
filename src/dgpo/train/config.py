"""``DGPOConfig``: TRL's ``GRPOConfig`` plus the dgpo objective, advantage and aggregation.

The objective's parameters live in one place only — its config dataclass in :mod:`dgpo.losses`;
``objective_kwargs`` overrides them. TRL options that the dgpo loss replaces are refused when set, never ignored:

* ``epsilon`` / ``epsilon_high`` map onto the objective's ``eps_low`` / ``eps_high`` (TRL's clip-range meaning:
  r ∈ [1 − epsilon, 1 + epsilon_high]) when the objective has them and ``objective_kwargs`` does not set them;
  set to non-defaults for an objective without a trust region (``pg``, ``sapo``) they are an error.
* ``loss_type`` is replaced by ``objective`` + ``aggregation``; ``scale_rewards`` and
  ``multi_objective_aggregation`` by ``advantage``; ``delta`` by the objective's ``dual_clip_c``;
  ``importance_sampling_level="sequence"`` by ``objective="gspo"``. Non-default values are errors.
* ``use_liger_kernel`` (deprecated in TRL 1.16) and ``use_adaptive_entropy`` are refused.

The defaults of ``objective``, ``advantage``, ``aggregation`` and ``num_iterations`` are ``RLConfig``'s
(:mod:`dgpo.train.run_config`), the one place they are written. Off-policy by default: ``num_iterations = 2``,
so every generation batch is used for two optimiser passes and the second sees a ratio π_θ/π_old ≠ 1 — without
that, every clipping objective reduces to plain PG and the choice of objective does not matter (TRL's default,
1 iteration, keeps the ratio identically 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from trl import GRPOConfig

from dgpo.advantages import ADVANTAGES
from dgpo.aggregation import AGGREGATIONS
from dgpo.losses import LOSSES, Objective, get_loss
from dgpo.train.choices import check_choices
from dgpo.train.run_config import RLConfig, default_of

_TRL_DEFAULTS = {f.name: f.default for f in fields(GRPOConfig)}


@dataclass
class DGPOConfig(GRPOConfig):
    """GRPOConfig with ``objective``, ``objective_kwargs``, ``advantage`` and ``aggregation`` (see module doc)."""

    objective: str = field(
        default=default_of(RLConfig, "objective"), metadata={"help": f"Objective: one of {', '.join(LOSSES)}."}
    )
    objective_kwargs: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "Parameters of the objective, e.g. {'n': 2, 'm': 2}."}
    )
    advantage: str = field(
        default=default_of(RLConfig, "advantage"), metadata={"help": f"Advantage: one of {', '.join(ADVANTAGES)}."}
    )
    aggregation: str = field(
        default=default_of(RLConfig, "aggregation"),
        metadata={"help": f"Aggregation: one of {', '.join(AGGREGATIONS)}."},
    )
    num_iterations: int = field(
        default=default_of(RLConfig, "num_iterations"),
        metadata={"help": "Optimiser passes per generation batch (off-policy)."},
    )
    logprob_token_tile: int | None = field(
        default=None,
        metadata={
            "help": "Tokens per tile of TRL's chunked log-prob kernel; None: 512 without Triton (CPU), TRL's "
            "4096 with it (see dgpo.train.logprob_tiles)."
        },
    )

    def __post_init__(self) -> None:
        self._refuse_replaced_options()
        if self.logprob_token_tile is not None and not (
            isinstance(self.logprob_token_tile, int) and self.logprob_token_tile > 0
        ):
            raise ValueError(
                f"DGPOConfig.logprob_token_tile must be a positive integer or None, got {self.logprob_token_tile!r}"
            )
        super().__post_init__()
        # Validates every choice and parameter now, not at the first training step.
        check_choices(self.objective, self.objective_params(), self.advantage, self.aggregation)

    def _refuse_replaced_options(self) -> None:
        if self.use_liger_kernel:
            raise ValueError("use_liger_kernel=True is not supported (deprecated in TRL 1.16); leave it False")
        replaced = {
            "loss_type": "objective and aggregation",
            "scale_rewards": "advantage",
            "multi_objective_aggregation": "advantage",
            "delta": "the objective's dual_clip_c (objective_kwargs)",
            "importance_sampling_level": 'objective="gspo"',
            "use_adaptive_entropy": "a static entropy_coef",
        }
        for name, instead in replaced.items():
            if getattr(self, name) != _TRL_DEFAULTS[name]:
                raise ValueError(
                    f"DGPOConfig.{name}={getattr(self, name)!r} is not used by the dgpo loss; use {instead} instead"
                )

    def objective_params(self) -> dict[str, Any]:
        """``objective_kwargs`` plus TRL's epsilon/epsilon_high mapped onto eps_low/eps_high (see module doc)."""
        if self.objective not in LOSSES:
            raise ValueError(f"unknown objective {self.objective!r}; valid objectives: {', '.join(LOSSES)}")
        params = dict(self.objective_kwargs)
        accepted = {f.name for f in fields(LOSSES[self.objective])}
        for trl_name, ours in (("epsilon", "eps_low"), ("epsilon_high", "eps_high")):
            value = getattr(self, trl_name)
            if value == _TRL_DEFAULTS[trl_name]:
                continue
            if ours not in accepted:
                raise ValueError(
                    f"DGPOConfig.{trl_name}={value!r} has no meaning for objective {self.objective!r} "
                    f"(it has no {ours}); leave {trl_name} at its default"
                )
            if ours in params and params[ours] != value:
                raise ValueError(
                    f"DGPOConfig.{trl_name}={value!r} conflicts with objective_kwargs {ours}={params[ours]!r}"
                )
            params[ours] = value
        return params

    def build_objective(self) -> Objective:
        return get_loss(self.objective, **self.objective_params())
