"""The verl plugin: registration by entry point, parity with verl's own losses, config mapping.

Importing it replaces no verl attribute (no patch for bypass mode, docs/verl.md): tests_verl/test_private_api.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from verl.trainer.ppo import core_algos
from verl.workers.config import FSDPActorConfig

from conftest import compose_actor, make_batch
from dgpo.aggregation import aggregate  # noqa: F401  (imported to prove the core imports beside verl)
from dgpo.integrations.verl import VERL_LOSS_MODES, objective_for
from dgpo.losses import LOSSES, get_loss

PROBE = (
    "import json, verl\n"
    "from verl.trainer.ppo import core_algos as c\n"
    "print(json.dumps({k: getattr(v, '__module__', '') for k, v in c.POLICY_LOSS_REGISTRY.items()}))\n"
)


def registry_after_import(**env) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_bare_import_registers_every_objective_through_the_entry_point():
    registry = registry_after_import(VERL_USE_EXTERNAL_PLUGINS="auto")
    assert set(VERL_LOSS_MODES.values()) <= set(registry)
    assert {registry[m] for m in VERL_LOSS_MODES.values()} == {"dgpo.integrations.verl"}
    # verl's own losses are untouched
    for own in ("vanilla", "cispo", "gspo", "sapo"):
        assert registry[own] == "verl.trainer.ppo.core_algos"
    # without entry points nothing of ours is there: the entry point, not an explicit import, did the work
    bare = registry_after_import(VERL_USE_EXTERNAL_PLUGINS="none")
    assert not set(VERL_LOSS_MODES.values()) & set(bare)
    explicit = registry_after_import(
        VERL_USE_EXTERNAL_PLUGINS="none", VERL_USE_EXTERNAL_MODULES="dgpo.integrations.verl"
    )
    assert set(VERL_LOSS_MODES.values()) <= set(explicit)


def test_names():
    assert VERL_LOSS_MODES["dgpo"] == "dgpo"
    assert VERL_LOSS_MODES["grpo"] == "dgpo_grpo" and len(VERL_LOSS_MODES) == len(LOSSES)


def grads(loss_fn, old, logp, adv, mask, **kwargs):
    leaf = logp.detach().clone().requires_grad_(True)
    loss, metrics = loss_fn(old, leaf, adv, mask, **kwargs)
    (grad,) = torch.autograd.grad(loss, leaf)
    return loss.detach(), grad, metrics


def test_composed_verl_config_reaches_the_objective(actor_config):
    objective = objective_for("dgpo", actor_config)
    assert objective.config == get_loss("dgpo", n=2, m=2, eps_low=0.2, eps_high=0.28).config
    old, logp, adv, mask = make_batch()
    verl_loss = core_algos.get_policy_loss_fn("dgpo")
    for mode in ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum"):
        loss, grad, metrics = grads(verl_loss, old, logp, adv, mask, loss_agg_mode=mode, config=actor_config)

        def reference(o, lp, a, m, _mode=mode):
            per_token, _ = get_loss("dgpo", n=2, m=2, eps_low=0.2, eps_high=0.28)(lp, o, a, m)
            return core_algos.agg_loss(loss_mat=per_token, loss_mask=m, loss_agg_mode=_mode), {}

        ref_loss, ref_grad, _ = grads(reference, old, logp, adv, mask)
        torch.testing.assert_close(loss, ref_loss, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(grad, ref_grad, rtol=1e-12, atol=1e-12)
    assert {"actor/pg_clipfrac", "actor/ppo_kl", "actor/pg_clipfrac_lower", "actor/dgpo/region/ln"} <= set(metrics)
    shares = [metrics[f"actor/dgpo/grad_share/{region}"] for region in ("inside", "ln", "hp", "lp", "hn")]
    assert sum(shares) == pytest.approx(1.0) and metrics["actor/dgpo/grad/abs_sum"] > 0
    assert all(isinstance(v, float) for v in metrics.values())


def test_stock_policy_loss_config_keeps_the_defaults_of_the_dgpo_parameters():
    """The ``policy_loss.dgpo_*`` parameters verl has no field for keep the objective's default when unset."""
    stock = compose_actor(
        ["actor_rollout_ref.actor.policy_loss.loss_mode=dgpo", "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2",
         "actor_rollout_ref.rollout.n=4"]
    )  # fmt: skip
    config = objective_for("dgpo", stock).config
    assert (config.n, config.m) == (1.0, 2.0)  # DGPOLossConfig defaults
    assert objective_for("ce_gppo", stock).config.beta1 == 0.5
    assert objective_for("sapo", stock).config.tau_neg == stock.tau_neg


def actor(**kwargs) -> FSDPActorConfig:
    base = {"strategy": "fsdp", "ppo_micro_batch_size_per_gpu": 2, "ppo_mini_batch_size": 4, "rollout_n": 4}
    return FSDPActorConfig(**{**base, **kwargs})


PARITY = [
    # (verl loss_mode, ours, actor config fields, aggregation)
    ("vanilla", "dgpo_grpo", {"clip_ratio_low": 0.2, "clip_ratio_high": 0.28, "clip_ratio_c": 3.0}, "token-mean"),
    ("cispo", "dgpo_cispo", {"clip_ratio_low": 0.2, "clip_ratio_high": 0.3}, "token-mean"),
    ("cispo", "dgpo_cispo", {"clip_ratio_low": 1.0, "clip_ratio_high": 4.0}, "seq-mean-token-sum"),
    ("sapo", "dgpo_sapo", {"tau_pos": 1.0, "tau_neg": 1.05}, "seq-mean-token-mean"),
    ("gspo", "dgpo_gspo", {"clip_ratio_low": 3e-4, "clip_ratio_high": 4e-4}, "seq-mean-token-mean"),
]


@pytest.mark.parametrize(("theirs", "ours", "fields", "mode"), PARITY, ids=[p[0] + "-" + p[3] for p in PARITY])
def test_parity_with_verl_builtin_losses(theirs, ours, fields, mode):
    config = actor(**fields)
    scale = 0.002 if theirs == "gspo" else 0.5  # GSPO's trust region is 1e-4 wide: keep s near it
    old, logp, adv, mask = make_batch(scale=scale)
    ref_loss, ref_grad, ref_metrics = grads(core_algos.get_policy_loss_fn(theirs), old, logp, adv, mask,
                                            loss_agg_mode=mode, config=config)  # fmt: skip
    loss, grad, metrics = grads(
        core_algos.get_policy_loss_fn(ours), old, logp, adv, mask, loss_agg_mode=mode, config=config
    )
    torch.testing.assert_close(loss, ref_loss, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-12, atol=1e-12)
    assert metrics["actor/ppo_kl"] == pytest.approx(ref_metrics["actor/ppo_kl"], rel=1e-9, abs=1e-12)
    if theirs == "vanilla":
        assert metrics["actor/pg_clipfrac_lower"] == pytest.approx(ref_metrics["actor/pg_clipfrac_lower"], abs=1e-12)


def test_rollout_weights_and_global_batch_info_act_as_in_verl():
    config = actor(clip_ratio_low=0.2, clip_ratio_high=0.2, clip_ratio_c=3.0)
    old, logp, adv, mask = make_batch(seed=3)
    weights = torch.rand(old.shape, generator=torch.Generator().manual_seed(5), dtype=old.dtype) + 0.5
    config.global_batch_info.update({"dp_size": 2, "batch_num_tokens": 80, "global_batch_size": 10})
    for mode in ("token-mean", "seq-mean-token-mean"):
        kwargs = {"loss_agg_mode": mode, "config": config, "rollout_is_weights": weights}
        ref_loss, ref_grad, _ = grads(core_algos.get_policy_loss_fn("vanilla"), old, logp, adv, mask, **kwargs)
        loss, grad, _ = grads(core_algos.get_policy_loss_fn("dgpo_grpo"), old, logp, adv, mask, **kwargs)
        torch.testing.assert_close(loss, ref_loss, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(grad, ref_grad, rtol=1e-12, atol=1e-12)
    plain, _, _ = grads(core_algos.get_policy_loss_fn("dgpo_grpo"), old, logp, adv, mask, config=actor())
    assert not torch.isclose(plain, loss)  # the weights and the global counts really changed the result


def test_the_example_launch_script_composes_with_verl(tmp_path):
    """Every override of examples/verl/run_dgpo_r1_1p5b.sh applies to verl's real ppo_trainer.yaml."""
    import re
    from pathlib import Path

    from hydra import compose, initialize_config_dir
    from verl.utils.config import omega_conf_to_dataclass

    script = (Path(__file__).resolve().parents[1] / "examples" / "verl" / "run_dgpo_r1_1p5b.sh").read_text()
    block = script.split("# BEGIN OVERRIDES")[1].split("# END OVERRIDES")[0]
    substitutions = {"${DATA}": str(tmp_path), "${NGPUS}": "8", "${REWARD_FILE}": "/x/math.py"}
    overrides = []
    for line in block.split():
        for key, value in substitutions.items():
            line = line.replace(key, value)
        overrides.append(line)
    assert not [o for o in overrides if re.search(r"\$\{", o)]
    config_dir = os.path.join(os.path.dirname(core_algos.__file__), "..", "config")
    with initialize_config_dir(config_dir=os.path.abspath(config_dir), version_base=None):
        cfg = compose("ppo_trainer", overrides=overrides)
    actor_cfg = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)
    assert actor_cfg.policy_loss.loss_mode == "dgpo"
    objective = objective_for("dgpo", actor_cfg)
    assert objective.config == get_loss("dgpo", n=2, m=2, eps_low=0.2, eps_high=0.2).config
    assert cfg.reward.custom_reward_function.name == "compute_score"
