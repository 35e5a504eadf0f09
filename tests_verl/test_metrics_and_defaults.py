"""verl's metric keys mapped from dgpo's metrics, and verl's config fields winning over the objectives' defaults.

verl's ``masked_mean`` divides by ``count + 1e-8``, dgpo by the count: where the definitions agree the values agree
to a relative 1e-9 (``SAME``), not to the float.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import pytest
import torch
from verl.trainer.ppo import core_algos
from verl.workers.config import FSDPActorConfig

import dgpo.integrations.verl as plugin
from conftest import compose_actor, make_batch
from dgpo.losses import LOSSES, get_loss

VERL_KEYS = ("actor/pg_clipfrac", "actor/pg_clipfrac_lower", "actor/ppo_kl")
#: Agreement with verl's value where the definitions agree (verl's +1e-8 in the denominator is ~1e-10 relative).
SAME = {"rel": 1e-9, "abs": 1e-12}


def actor(**kwargs) -> FSDPActorConfig:
    base = {"strategy": "fsdp", "ppo_micro_batch_size_per_gpu": 2, "ppo_mini_batch_size": 4, "rollout_n": 4}
    return FSDPActorConfig(**{**base, **kwargs})


def batch_with_zero_advantages(scale: float, seed: int = 0):
    """make_batch with two rows of Â exactly 0 (an all-correct or all-wrong group) whose ratios leave the region."""
    old, logp, adv, mask = make_batch(seed=seed, b=8, t=9, scale=scale)
    adv = adv.clone()
    adv[2] = 0.0
    adv[6] = 0.0
    return old, logp.detach(), adv, mask


def metrics_of(mode: str, config, old, logp, adv, mask) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the defaults warnings are tested below
        _, metrics = core_algos.get_policy_loss_fn(mode)(old, logp, adv, mask, config=config)
    return metrics


@pytest.mark.parametrize(
    ("theirs", "ours", "fields", "scale"),
    [
        ("vanilla", "dgpo_grpo", {"clip_ratio_low": 0.2, "clip_ratio_high": 0.28, "clip_ratio_c": 3.0}, 0.5),
        ("vanilla", "dgpo_dapo", {"clip_ratio_low": 0.2, "clip_ratio_high": 0.28, "clip_ratio_c": 1.5}, 0.8),
        ("gspo", "dgpo_gspo", {"clip_ratio_low": 3e-4, "clip_ratio_high": 4e-4}, 0.002),
    ],
    ids=["grpo", "dapo", "gspo"],
)
def test_pg_clipfrac_is_verls_own_with_zero_advantage_rows(theirs, ours, fields, scale):
    """verl's own loss's values on the same batch; Â = 0 tokens outside the region are not counted."""
    config = actor(**fields)
    old, logp, adv, mask = batch_with_zero_advantages(scale)
    want = metrics_of(theirs, config, old, logp, adv, mask)
    got = metrics_of(ours, config, old, logp, adv, mask)
    for key in VERL_KEYS:
        assert got[key] == pytest.approx(want[key], **SAME), key
    assert got["actor/pg_clipfrac"] > 0
    if theirs == "vanilla":
        assert got["actor/pg_clipfrac_lower"] > 0  # dual-clip really acts on this batch
        # Â = 0 tokens above the region: counting them as positive (HP) would change the fraction
        above = (torch.exp(logp - old) > 1 + config.clip_ratio_high) & mask.bool()
        assert above[[2, 6]].any()


def test_pg_clipfrac_means_the_same_for_every_objective_with_a_trust_region():
    """verl's vanilla definition on each objective's own region (cispo too, unlike verl's cispo); none without one."""
    config = actor(clip_ratio_low=0.2, clip_ratio_high=0.3, clip_ratio_c=3.0)
    old, logp, adv, mask = batch_with_zero_advantages(0.5, seed=1)
    vanilla = metrics_of("vanilla", config, old, logp, adv, mask)
    for name, mode in plugin.VERL_LOSS_MODES.items():
        got = metrics_of(mode, config, old, logp, adv, mask)
        if name == "gspo":
            continue  # its sequence ratio: tested above
        if "eps_low" in {f.name for f in dataclasses.fields(LOSSES[name])}:
            assert got["actor/pg_clipfrac"] == pytest.approx(vanilla["actor/pg_clipfrac"], **SAME), name
        else:  # pg, sapo: nothing is clipped (verl's sapo logs 0 too)
            assert got["actor/pg_clipfrac"] == 0.0, name
            assert metrics_of("sapo", config, old, logp, adv, mask)["actor/pg_clipfrac"] == 0.0
        assert got["actor/ppo_kl"] == pytest.approx(vanilla["actor/ppo_kl"], **SAME), name
    # verl's own cispo counts every token outside the region, Â = 0 included: a different number
    assert metrics_of("cispo", config, old, logp, adv, mask)["actor/pg_clipfrac"] > vanilla["actor/pg_clipfrac"]


def test_gspo_ppo_kl_clamps_the_log_ratio_where_verls_gspo_does_not():
    """The documented difference: dgpo's ppo_kl is −log r clamped to ±20 (verl's vanilla) for every objective; verl's
    gspo averages the unclamped −log r. They differ only on tokens with |log r| > 20; pg_clipfrac does not."""
    config = actor(clip_ratio_low=3e-4, clip_ratio_high=4e-4)
    old, logp, adv, mask = make_batch(scale=0.002)
    logp = logp.detach().clone()
    logp[0, 0] = old[0, 0] + 30.0  # one token 10 beyond the clamp
    ours = metrics_of("dgpo_gspo", config, old, logp, adv, mask)
    theirs = metrics_of("gspo", config, old, logp, adv, mask)
    active = mask.bool()
    tokens = int(active.sum())
    assert ours["actor/ppo_kl"] == pytest.approx(-(logp - old).clamp(-20, 20)[active].mean().item(), rel=1e-12)
    assert theirs["actor/ppo_kl"] == pytest.approx(-(logp - old)[active].mean().item(), **SAME)
    assert ours["actor/ppo_kl"] - theirs["actor/ppo_kl"] == pytest.approx(10 / tokens, rel=1e-6)
    assert ours["actor/pg_clipfrac"] == pytest.approx(theirs["actor/pg_clipfrac"], **SAME)


def test_the_objective_is_built_once_per_config_values_not_per_micro_batch(monkeypatch, fresh_warnings):
    built = []
    real = plugin.get_loss
    monkeypatch.setattr(plugin, "get_loss", lambda name, **kw: built.append(name) or real(name, **kw))
    fields = {"clip_ratio_low": 0.2, "clip_ratio_high": 0.28, "clip_ratio_c": 3.0}
    config = actor(**fields)
    old, logp, adv, mask = make_batch()
    loss = core_algos.get_policy_loss_fn("dgpo")
    for _ in range(3):  # three micro-batches
        loss(old, logp.detach(), adv, mask, config=config)
    assert built == ["dgpo"]
    # the same values in another config object (each worker holds its own): the same objective
    assert plugin.objective_for("dgpo", actor(**fields)) is plugin.objective_for("dgpo", config)
    assert built == ["dgpo"]
    # a different value builds and checks a new one
    assert plugin.objective_for("dgpo", actor(**{**fields, "clip_ratio_high": 0.3})).config.eps_high == 0.3
    assert built == ["dgpo", "dgpo"]


# ---- C: verl's fields win, with a one-time warning naming the replaced default ----------------------------------


@pytest.fixture
def fresh_warnings(monkeypatch):
    """Nothing warned about and no objective built yet in this process (the warnings come with a build)."""
    monkeypatch.setattr(plugin, "_WARNED", set())
    plugin._objective.cache_clear()
    yield
    plugin._objective.cache_clear()


STOCK = ["actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2", "actor_rollout_ref.rollout.n=4"]


def test_stock_verl_config_overrides_the_defaults_and_says_so(fresh_warnings):
    stock = compose_actor(["actor_rollout_ref.actor.policy_loss.loss_mode=dgpo_gppo", *STOCK])
    assert (stock.clip_ratio_c, stock.clip_ratio_high) == (3.0, 0.2)  # verl 0.9.1's defaults
    with pytest.warns(UserWarning) as record:
        gppo = plugin.objective_for("gppo", stock)
        dapo = plugin.objective_for("dapo", stock)
        gspo = plugin.objective_for("gspo", stock)
    assert gppo.config.dual_clip_c == 3.0 and gppo.config.eps_high == 0.2  # verl's values are used ...
    assert dapo.config.eps_high == 0.2 and gspo.config.eps_low == 0.2
    messages = sorted(str(w.message) for w in record)
    # ... and each replaced constant is named once, with the verl field to set
    assert (
        "dgpo_gppo: dual_clip_c = 3 from actor.clip_ratio_c, not gppo's own default 10; "
        "set actor_rollout_ref.actor.clip_ratio_c=10 to follow it" in messages
    )
    for start in (
        "dgpo_gppo: eps_high = 0.2 from actor.clip_ratio_high, not gppo's own default 0.28",
        "dgpo_dapo: eps_high = 0.2 from actor.clip_ratio_high, not dapo's own default 0.28",
        "dgpo_dapo: dual_clip_c = 3 from actor.clip_ratio_c, not dapo's own default no dual-clip",
        "dgpo_gspo: eps_low = 0.2 from actor.clip_ratio_low, not gspo's own default 0.0003",
        "dgpo_gspo: eps_high = 0.2 from actor.clip_ratio_high, not gspo's own default 0.0004",
    ):
        assert any(m.startswith(start) for m in messages), (start, messages)
    assert len(messages) == len(set(messages)) == 6  # gppo ×2, dapo ×2, gspo ×2
    # one time: the same objective, constant and value never warn again
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plugin.objective_for("gppo", stock)
        plugin.objective_for("dgpo", stock)  # DGPO's defaults are verl's: nothing to say
        plugin.objective_for("sapo", stock)


def test_setting_the_papers_values_silences_the_warning(fresh_warnings):
    paper = compose_actor(
        ["actor_rollout_ref.actor.clip_ratio_c=10", "actor_rollout_ref.actor.clip_ratio_high=0.28", *STOCK]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = plugin.objective_for("gppo", paper).config
    assert (config.dual_clip_c, config.eps_high) == (10.0, 0.28)
    # for grpo/dapo (no dual-clip by default) a clip_ratio_c above every ratio is "off", exactly
    off = compose_actor(["actor_rollout_ref.actor.clip_ratio_c=1e9", *STOCK])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grpo = plugin.objective_for("grpo", off)
    old, logp, adv, mask = make_batch(scale=12.0)  # log-ratios past the ±20 clamp
    assert (logp - old).abs().max() > 20 and math.exp(20) < grpo.config.dual_clip_c
    leaf = logp.detach().clone().requires_grad_(True)
    plain_leaf = logp.detach().clone().requires_grad_(True)
    value, _ = grpo(leaf, old, adv, mask)
    plain, _ = get_loss("grpo", eps_low=0.2, eps_high=0.2)(plain_leaf, old, adv, mask)
    (value.sum() + plain.sum()).backward()
    assert torch.equal(value, plain) and torch.equal(leaf.grad, plain_leaf.grad)
