"""verl plugin: every dgpo objective as a verl policy loss, registered on ``import verl``.

Loaded automatically through the ``verl.plugins`` entry point (pyproject) in the driver and in every Ray worker
where dgpo is installed, or explicitly with ``VERL_USE_EXTERNAL_MODULES=dgpo.integrations.verl``.

Names: ``loss_mode=dgpo`` for DGPO, ``dgpo_<name>`` for the others (``dgpo_grpo``, ``dgpo_cispo``, …); verl's own
``vanilla``, ``cispo``, ``gspo``, ``sapo``… are never overwritten (verl's registry would silently replace them).

verl → dgpo parameters (read from the actor config at every call):

=======================================  =====================================================
verl                                     dgpo
=======================================  =====================================================
``actor.clip_ratio_low`` (else ratio)    ``eps_low`` (objectives with a trust region)
``actor.clip_ratio_high`` (else ratio)   ``eps_high``
``actor.clip_ratio_c``                   ``dual_clip_c`` (grpo, dapo, gppo, ce_gppo, aspo)
``actor.tau_pos`` / ``actor.tau_neg``    ``tau_pos`` / ``tau_neg`` (sapo)
``policy_loss.dgpo_n`` / ``dgpo_m``      ``n`` / ``m`` (dgpo), with :class:`DGPOPolicyLossConfig`
``policy_loss.dgpo_beta1`` / ``_beta2``  ``beta1`` / ``beta2`` (ce_gppo)
=======================================  =====================================================

With a stock ``PolicyLossConfig`` (no ``dgpo_*`` fields) the objective's own defaults apply.
"""

from __future__ import annotations

import functools
import logging
import warnings
from dataclasses import dataclass, fields
from typing import Any

import torch
from verl.trainer.ppo import core_algos
from verl.workers.config.actor import PolicyLossConfig

from dgpo.losses import LOSSES, Objective, get_loss

logger = logging.getLogger(__name__)

#: dgpo objective name → verl ``loss_mode``.
VERL_LOSS_MODES = {name: "dgpo" if name == "dgpo" else f"dgpo_{name}" for name in LOSSES}
#: ``policy_loss.<key>`` → dgpo parameter, for parameters verl's actor config has no field for.
POLICY_LOSS_PARAMETERS = {"dgpo_n": "n", "dgpo_m": "m", "dgpo_beta1": "beta1", "dgpo_beta2": "beta2"}


@dataclass
class DGPOPolicyLossConfig(PolicyLossConfig):
    """``PolicyLossConfig`` with the dgpo parameters verl has no field for; None keeps the objective's default.

    Select it with ``actor_rollout_ref.actor.policy_loss._target_=dgpo.integrations.verl.DGPOPolicyLossConfig``
    and set values with ``+actor_rollout_ref.actor.policy_loss.dgpo_n=2``.
    """

    dgpo_n: float | None = None
    dgpo_m: float | None = None
    dgpo_beta1: float | None = None
    dgpo_beta2: float | None = None


def _read(config: Any, key: str, default: Any = None) -> Any:
    """A field of a verl config, whether a dataclass (workers) or a DictConfig (driver)."""
    if config is None:
        return default
    if hasattr(config, "get"):
        try:
            value = config.get(key, default)
        except Exception:
            value = getattr(config, key, default)
    else:
        value = getattr(config, key, default)
    return default if value is None else value


def objective_for(name: str, config: Any) -> Objective:
    """The dgpo objective ``name`` configured from a verl actor config (see the module table)."""
    accepted = {f.name for f in fields(LOSSES[name])}
    ratio = _read(config, "clip_ratio", 0.2)
    params: dict[str, Any] = {}
    if "eps_low" in accepted:
        params["eps_low"] = _read(config, "clip_ratio_low", ratio)
    if "eps_high" in accepted:
        params["eps_high"] = _read(config, "clip_ratio_high", ratio)
    if "dual_clip_c" in accepted:
        params["dual_clip_c"] = _read(config, "clip_ratio_c", 3.0)
    for key in ("tau_pos", "tau_neg"):
        if key in accepted and _read(config, key) is not None:
            params[key] = _read(config, key)
    policy_loss = _read(config, "policy_loss")
    for verl_key, ours in POLICY_LOSS_PARAMETERS.items():
        value = _read(policy_loss, verl_key)
        if value is not None and ours in accepted:
            params[ours] = value
    return get_loss(name, **params)


def make_policy_loss(name: str):
    """A verl policy loss (verl's exact signature) computing dgpo objective ``name``."""

    def policy_loss(
        old_log_prob: torch.Tensor,
        log_prob: torch.Tensor,
        advantages: torch.Tensor,
        response_mask: torch.Tensor,
        loss_agg_mode: str = "token-mean",
        config: Any = None,
        rollout_is_weights: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        if config is None:
            raise ValueError(f"verl loss_mode={VERL_LOSS_MODES[name]!r} needs the actor config (config=...)")
        objective = objective_for(name, config)
        per_token_loss, metrics = objective(log_prob, old_log_prob, advantages, response_mask)
        if rollout_is_weights is not None:
            per_token_loss = per_token_loss * rollout_is_weights
        # verl's own aggregation with the global batch info, so token-mean is right under data parallelism.
        loss = core_algos.agg_loss(
            loss_mat=per_token_loss,
            loss_mask=response_mask,
            loss_agg_mode=loss_agg_mode,
            **(_read(config, "global_batch_info", {}) or {}),
        )
        return loss, verl_metrics(objective, metrics, old_log_prob, log_prob, advantages, response_mask)

    policy_loss.__name__ = f"compute_policy_loss_{VERL_LOSS_MODES[name]}"
    policy_loss.__doc__ = f"dgpo objective {name!r} as a verl policy loss (dgpo.integrations.verl)."
    return policy_loss


def verl_metrics(objective: Objective, metrics: dict, old_log_prob, log_prob, advantages, mask) -> dict[str, float]:
    """verl's keys (``actor/pg_clipfrac``, ``actor/ppo_kl``, ``actor/pg_clipfrac_lower``) plus ``actor/dgpo/*``."""
    with torch.no_grad():
        active = mask.bool()
        count = active.sum().clamp_min(1)
        log_ratio = (log_prob - old_log_prob).detach().clamp(-20, 20)
        ppo_kl = (torch.where(active, -log_ratio, 0.0).sum() / count).item()
        c = getattr(objective.config, "dual_clip_c", None)
        lower = 0.0
        if c is not None:
            dual = active & (advantages < 0) & (torch.exp(log_ratio) > c)
            lower = (dual.sum() / count).item()
    out = {
        "actor/pg_clipfrac": float(metrics["region/ln"] + metrics["region/hp"]),
        "actor/ppo_kl": ppo_kl,
        "actor/pg_clipfrac_lower": lower,
    }
    out.update({f"actor/dgpo/{key}": float(value) for key, value in metrics.items()})
    return out


def _warn_on_bypass(apply_bypass_mode):
    @functools.wraps(apply_bypass_mode)
    def wrapped(batch, rollout_corr_config=None, policy_loss_config=None):
        mode = _read(policy_loss_config, "loss_mode")
        if mode in VERL_LOSS_MODES.values():
            message = (
                f"algorithm.rollout_correction.bypass_mode=true REPLACES policy_loss.loss_mode={mode!r} with verl's "
                "'bypass_mode' loss: the dgpo objective will NOT be used. Set bypass_mode=false to train with it."
            )
            logger.warning(message)
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        return apply_bypass_mode(batch, rollout_corr_config, policy_loss_config)

    wrapped.__dgpo_wrapped__ = True
    return wrapped


def register() -> None:
    """Register every objective (idempotent); never overwrite a loss mode that is not ours.

    verl swallows exceptions raised while loading plugins, so a clash is logged loudly and skipped instead.
    """
    for name, mode in VERL_LOSS_MODES.items():
        existing = core_algos.POLICY_LOSS_REGISTRY.get(mode)
        if existing is not None and not getattr(existing, "__dgpo__", False):
            logger.warning("verl already has a policy loss %r that is not dgpo's; not overwriting it", mode)
            continue
        loss = make_policy_loss(name)
        loss.__dgpo__ = True
        core_algos.register_policy_loss(mode)(loss)
    try:
        from verl.trainer.ppo import rollout_corr_helper
    except ImportError:  # older verl without rollout correction
        return
    if not getattr(rollout_corr_helper.apply_bypass_mode, "__dgpo_wrapped__", False):
        rollout_corr_helper.apply_bypass_mode = _warn_on_bypass(rollout_corr_helper.apply_bypass_mode)


register()
