"""verl plugin: every dgpo objective as a verl policy loss, registered on ``import verl``.

Loaded automatically through the ``verl.plugins`` entry point (pyproject) in the driver and in every Ray worker
where dgpo is installed, or explicitly with ``VERL_USE_EXTERNAL_MODULES=dgpo.integrations.verl``.

Names: ``loss_mode=dgpo`` for DGPO, ``dgpo_<name>`` for the others (``dgpo_grpo``, ``dgpo_cispo``, …); verl's own
``vanilla``, ``cispo``, ``gspo``, ``sapo``… are never overwritten (verl's registry would silently replace them).

verl → dgpo parameters (read from the actor config):

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

**Cost per micro-batch.** verl calls the loss once per micro-batch with the worker's actor config (a dataclass, not
hashable). The handful of values above are read from it at every call; the objective is built and checked once per
distinct set of them (:func:`objective_for`, cached), so the warnings above are also raised only when a set is
first seen. The metrics leave the device in one transfer per micro-batch (see Metrics).

**Metrics.** verl's ``actor/pg_clipfrac``, ``actor/pg_clipfrac_lower`` and ``actor/ppo_kl`` are mapped from dgpo's
objective metrics, not recomputed:

* ``pg_clipfrac`` = ``region/ln`` + ``region/hp``: the fraction of active tokens in LN ∪ HP, i.e. where verl's
  ``vanilla`` clipped surrogate ``−Â·clip(r, 1−ε_low, 1+ε_high)`` exceeds the unclipped ``−Â·r`` — tokens with
  Â = 0 are never clipped. It means the same for every objective with a trust region (verl's own ``cispo`` instead
  counts every token outside the region whatever Â); objectives without one (``pg``, ``sapo``) report 0, as verl's
  ``sapo`` does. GSPO's regions are decided on its sequence ratio, as verl's ``gspo`` does.
* ``pg_clipfrac_lower`` = ``region/dual_clipped``: active tokens with Â < 0 and ``r > dual_clip_c`` (0 without
  dual-clip), verl's ``vanilla`` definition.
* ``ppo_kl`` = ``kl/k1_old``: the mean over active tokens of −log r, with log r clamped to ±20 as verl's ``vanilla``.

Where the definitions differ from verl's own: verl divides by ``count + 1e-8`` (``masked_mean``), dgpo by the count,
a relative difference of ~1e-8/count; verl's ``gspo`` computes ``ppo_kl`` from the *unclamped* token log-ratio and
its sequence ratio as ``exp(min(mean log r, 10))`` from unclamped token log-ratios, dgpo from log-ratios clamped to
±20 (without the cap at 10, which changes no region) — the two differ only where some token has |log r| > 20.

dgpo's own metrics follow as ``actor/dgpo/<key>``. verl 0.9.1's ``ppo_loss`` wraps each returned value in a
``Metric`` at once, and ``Metric.append`` turns a tensor into a float with ``.item()`` — one device-to-host sync per
key, ~22 per micro-batch. So the plugin returns floats read in a single transfer (all values stacked, one
``tolist()``). verl averages every key over micro-batches and data-parallel ranks without weights (``Metric`` MEAN),
so with several micro-batches a fraction is a mean of per-micro-batch fractions, a ``*_max`` a mean of maxima and a
``tokens/*`` count a mean count: only at one micro-batch per mini-batch and one process are they the batch's values.

**Rollout correction's bypass mode** (``algorithm.rollout_correction.bypass_mode=true``) keeps the dgpo loss, with
``old_log_prob`` = the rollout's log-probs (measured on verl 0.9.1, docs/verl.md): the loss mode verl's driver sets
to ``bypass_mode`` never reaches the workers, and verl's v1 trainer does not set it.
"""

from __future__ import annotations

import functools
import logging
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch
from verl.trainer.ppo import core_algos
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
    """A field of a verl config, whether a dataclass (workers) or a DictConfig (driver); None reads as ``default``.

    DictConfig, verl's config dataclasses (``BaseConfig``) and dicts answer ``get(key, default)`` for a missing key
    without raising; other objects are read with ``getattr``. Nothing is caught: what still raises (an interpolation
    that cannot be resolved) is a broken config, and hiding it would train with a default instead.
    """
    if config is None:
        return default
    value = config.get(key, default) if hasattr(config, "get") else getattr(config, key, default)
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
    warnings.warn(message, UserWarning, stacklevel=4)


def objective_for(name: str, config: Any) -> Objective:
    """The dgpo objective ``name`` configured from a verl actor config (see the module table).

    verl's fields always win over the objective's defaults; a differing value is warned about once. Built once per
    distinct set of values (:func:`_objective`): verl calls this for every micro-batch.
    """
    own = {f.name for f in fields(LOSSES[name])}
    ratio = _read(config, "clip_ratio", 0.2)
    # dgpo parameter -> (verl field it comes from, value); verl fills in every one of these
    from_verl: list[tuple[str, str, Any]] = []
    if "eps_low" in own:
        field = "clip_ratio_low" if _read(config, "clip_ratio_low") is not None else "clip_ratio"
        from_verl.append(("eps_low", field, _read(config, field, ratio)))
    if "eps_high" in own:
        field = "clip_ratio_high" if _read(config, "clip_ratio_high") is not None else "clip_ratio"
        from_verl.append(("eps_high", field, _read(config, field, ratio)))
    if "dual_clip_c" in own:
        from_verl.append(("dual_clip_c", "clip_ratio_c", _read(config, "clip_ratio_c", 3.0)))
    for key in ("tau_pos", "tau_neg"):
        if key in own and _read(config, key) is not None:
            from_verl.append((key, key, _read(config, key)))
    policy_loss = _read(config, "policy_loss")
    extra = tuple(
        (ours, value)
        for verl_key, ours in POLICY_LOSS_PARAMETERS.items()
        if ours in own and (value := _read(policy_loss, verl_key)) is not None
    )
    return _objective(name, tuple(from_verl), extra)


@functools.lru_cache(maxsize=64)
def _objective(name: str, from_verl: tuple[tuple[str, str, Any], ...], extra: tuple[tuple[str, Any], ...]) -> Objective:
    """Build and check the objective, warning where verl's value replaces its own default (cached: the key is the
    values read from the config, which itself is not hashable)."""
    own = {f.name: f.default for f in fields(LOSSES[name])}
    for param, field, value in from_verl:
        # dual-clip above the largest ratio (exp of the log-ratio clamp) never acts: that is "no dual-clip"
        off = own[param] is None and value >= math.exp(LOG_RATIO_CLAMP)
        if value != own[param] and not off:
            _warn_once(name, param, value, field, own[param])
    params = {param: value for param, _, value in from_verl}
    return get_loss(name, **params, **dict(extra))


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
    ) -> tuple[torch.Tensor, dict[str, float]]:
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
        return loss, verl_metrics(objective, metrics)

    policy_loss.__name__ = f"compute_policy_loss_{VERL_LOSS_MODES[name]}"
    policy_loss.__doc__ = f"dgpo objective {name!r} as a verl policy loss (dgpo.integrations.verl)."
    return policy_loss


def verl_metrics(objective: Objective, metrics: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """verl's three keys mapped from the objective's metrics (module doc), then ``actor/dgpo/<key>``; as floats.

    All values are stacked and read in one device-to-host transfer, where verl would call ``.item()`` on each.
    """
    values = dict(metrics)
    clipfrac = values["region/ln"] + values["region/hp"]
    if not {"eps_low", "eps_high"} <= {f.name for f in fields(objective.config)}:
        clipfrac = torch.zeros_like(clipfrac)  # pg, sapo: nothing is clipped (their regions only label tokens)
    out = {
        "actor/pg_clipfrac": clipfrac,
        "actor/pg_clipfrac_lower": values["region/dual_clipped"],
        "actor/ppo_kl": values["kl/k1_old"],
        **{f"actor/dgpo/{key}": value for key, value in values.items()},
    }
    with torch.no_grad():
        host = torch.stack([torch.as_tensor(v).detach().to(torch.float64) for v in out.values()]).tolist()
    return dict(zip(out, host, strict=True))


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


register()
