"""Tests of the verl plugin; they run in .venv-verl (verl caps transformers < 5.11), made by `make test`."""

import os

import pytest
import torch

torch.set_num_threads(int(os.environ.get("DGPO_TORCH_THREADS", "2")))
verl = pytest.importorskip("verl")

OVERRIDES = [
    "actor_rollout_ref.actor.policy_loss.loss_mode=dgpo",
    "actor_rollout_ref.actor.policy_loss._target_=dgpo.integrations.verl.DGPOPolicyLossConfig",
    "+actor_rollout_ref.actor.policy_loss.dgpo_n=2",
    "+actor_rollout_ref.actor.policy_loss.dgpo_m=2",
    "actor_rollout_ref.actor.clip_ratio_low=0.2",
    "actor_rollout_ref.actor.clip_ratio_high=0.28",
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2",
    "actor_rollout_ref.rollout.n=4",
]


def compose_actor(overrides=OVERRIDES):
    """verl's real ppo_trainer.yaml composed with overrides, converted to a dataclass the way verl's workers do."""
    from hydra import compose, initialize_config_dir
    from verl.utils.config import omega_conf_to_dataclass

    config_dir = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        cfg = compose("ppo_trainer", overrides=list(overrides))
    return omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)


@pytest.fixture(scope="session")
def actor_config():
    return compose_actor()


def make_batch(seed=0, b=6, t=9, scale=0.5, dtype=torch.float64):
    """(old_log_prob, log_prob leaf, advantages (B, T), mask) with ratios spread over every region."""
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(b, t, generator=g, dtype=dtype) * 3
    logp = (old + scale * torch.randn(b, t, generator=g, dtype=dtype)).requires_grad_(True)
    adv = torch.randn(b, 1, generator=g, dtype=dtype).expand(b, t).contiguous()
    mask = torch.ones(b, t, dtype=dtype)
    mask[1, 6:] = 0
    mask[4, 2:] = 0
    return old, logp, adv, mask
