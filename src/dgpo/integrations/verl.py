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

**verl's fields win.** verl's actor config always holds a value for ``clip_ratio_low/high``, ``clip_ratio_c`` and
``tau_pos/neg`` (its defaults 0.2/0.2, 3, 1/1.05), and a dataclass cannot tell a value the user set from a default
it filled in, so the objective's own defaults can never be applied reliably: the verl value is always used. Where
it differs from the objective's own default, a one-time warning (per objective, constant and value) names both,
e.g. ``dgpo_gppo: dual_clip_c = 3 from actor.clip_ratio_c, not gppo's own default 10``; set the verl field to the
objective's value to follow its paper. For grpo/dapo, whose default is no dual-clip, a ``clip_ratio_c`` above every
ratio (> e^20, the log-ratio clamp; e.g. 1e9) is exactly that and does not warn. Only the ``policy_loss.dgpo_*``
parameters, which verl has no field for, keep the objective's default when unset (None).

**Metrics.** ``actor/pg_clipfrac``, ``actor/pg_clipfrac_lower`` and ``actor/ppo_kl`` follow verl's own definitions,
computed here from the log-probs (not from dgpo's region metrics): ``pg_clipfrac`` is the fraction of active tokens
whose clipped surrogate ``−Â·clip(r, 1−ε_low, 1+ε_high)`` exceeds the unclipped ``−Â·r`` (verl's ``vanilla``), i.e.
LN ∪ HP with Â ≠ 0 — tokens with Â = 0 are never clipped; GSPO uses its sequence ratio, as verl's ``gspo`` does;
objectives without a trust region (``pg``, ``sapo``) report 0, as verl's ``sapo`` does. The same definition serves
every objective with a trust region, so the key means the same for all of them (verl's own ``cispo`` instead counts
every token outside the region whatever Â). ``pg_clipfrac_lower`` is
the fraction of tokens with Â < 0 and ``r > dual_clip_c`` (0 without dual-clip). dgpo's own metrics follow as
``actor/dgpo/<key>``. verl averages every one of these over micro-batches and data-parallel ranks without weights
(its ``Metric`` MEAN), so with several micro-batches a fraction is a mean of per-micro-batch fractions, a ``*_max`` a
mean of maxima and a ``tokens/*`` count a mean count: only at one micro-batch per mini-batch and one process are they
the batch's values.
"""

from __future__ import annotations

import functools
import logging
import math
import warnings
from dataclasses import dataclass, fields
from typing import Any

import torch
from verl.trainer.ppo import core_algos
from verl.utils.torch_functional import masked_mean
from verl.workers.config.actor import PolicyLossConfig

from dgpo.losses import LOG_RATIO_CLAMP, LOSSES, Objective, get_loss

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


#: (objective, parameter, value) already warned about in this process.
_WARNED: set[tuple[str, str, float | None]] = set()


def _warn_once(name: str, param: str, value: float, field: str, default: float | None) -> None:
    """Warn once that verl's ``field`` replaced the objective's own default for ``param``."""
    key = (name, param, value)
    if key in _WARNED:
        return
    _WARNED.add(key)
    mode = VERL_LOSS_MODES[name]
    if default is None:  # only dual_clip_c defaults to None (grpo, dapo): no dual-clip
        hint = f"set actor_rollout_ref.actor.{field}=1e9 to switch dual-clip off (no ratio reaches it)"
        own = "no dual-clip"
    else:
        hint = f"set actor_rollout_ref.actor.{field}={default:g} to follow it"
        own = f"{default:g}"
    message = f"{mode}: {param} = {value:g} from actor.{field}, not {name}'s own default {own}; {hint}"
    logger.warning(message)
    warnings.warn(message, UserWarning, stacklevel=3)


def objective_for(name: str, config: Any) -> Objective:
    """The dgpo objective ``name`` configured from a verl actor config (see the module table).

    verl's fields always win over the objective's defaults; a differing value is warned about once.
    """
    own = {f.name: f.default for f in fields(LOSSES[name])}
    ratio = _read(config, "clip_ratio", 0.2)
    # dgpo parameter -> (verl field it comes from, value); verl fills in every one of these
    from_verl: dict[str, tuple[str, Any]] = {}
    if "eps_low" in own:
        field = "clip_ratio_low" if _read(config, "clip_ratio_low") is not None else "clip_ratio"
        from_verl["eps_low"] = (field, _read(config, field, ratio))
    if "eps_high" in own:
        field = "clip_ratio_high" if _read(config, "clip_ratio_high") is not None else "clip_ratio"
        from_verl["eps_high"] = (field, _read(config, field, ratio))
    if "dual_clip_c" in own:
        from_verl["dual_clip_c"] = ("clip_ratio_c", _read(config, "clip_ratio_c", 3.0))
    for key in ("tau_pos", "tau_neg"):
        if key in own and _read(config, key) is not None:
            from_verl[key] = (key, _read(config, key))
    params: dict[str, Any] = {}
    for param, (field, value) in from_verl.items():
        params[param] = value
        # dual-clip above the largest ratio (exp of the log-ratio clamp) never acts: that is "no dual-clip"
        off = own[param] is None and value >= math.exp(LOG_RATIO_CLAMP)
        if value != own[param] and not off:
            _warn_once(name, param, value, field, own[param])
    policy_loss = _read(config, "policy_loss")
    for verl_key, ours in POLICY_LOSS_PARAMETERS.items():
        value = _read(policy_loss, verl_key)
        if value is not None and ours in own:
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
    """verl's keys by verl's own definitions (``vanilla``; ``gspo`` on its sequence ratio), plus ``actor/dgpo/*``.

    Computed with verl's formulas and ``masked_mean``, so they equal what verl's own loss logs on the same batch.
    """
    with torch.no_grad():
        adv = advantages if advantages.dim() == log_prob.dim() else advantages.unsqueeze(-1)
        log_ratio = (log_prob - old_log_prob).detach()
        clamped = torch.clamp(log_ratio, min=-20.0, max=20.0)
        cfg = objective.config
        eps_low, eps_high = getattr(cfg, "eps_low", None), getattr(cfg, "eps_high", None)
        if objective.name == "gspo":  # verl's gspo: the sequence ratio (mean token log-ratio), unclamped KL
            ppo_kl = masked_mean(-log_ratio, mask)
            seq_log_ratio = (log_ratio * mask).sum(-1) / mask.sum(-1).clamp(min=1)
            ratio = torch.exp(torch.clamp(seq_log_ratio, max=10.0)).unsqueeze(-1)
        else:
            ppo_kl = masked_mean(-clamped, mask)
            ratio = torch.exp(clamped)
        clipfrac = lower = 0.0
        if eps_low is not None and eps_high is not None:
            unclipped = -adv * ratio
            clipped = -adv * torch.clamp(ratio, 1 - eps_low, 1 + eps_high)
            clipfrac = masked_mean(torch.gt(clipped, unclipped).float(), mask).item()
            c = getattr(cfg, "dual_clip_c", None)
            if c is not None:
                dual = torch.gt(torch.maximum(unclipped, clipped), -adv * c) * (adv < 0).float()
                lower = masked_mean(dual, mask).item()
    out = {"actor/pg_clipfrac": clipfrac, "actor/ppo_kl": ppo_kl.item(), "actor/pg_clipfrac_lower": lower}
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
