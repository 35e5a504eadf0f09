"""Advantage estimators on hand-computed groups."""

from __future__ import annotations

import math

import pytest
import torch

from dgpo.advantages import ADVANTAGES, compute_advantages

REWARDS = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0], dtype=torch.float64)  # G = 4: two groups


def test_grpo_hand_computed():
    adv = compute_advantages(REWARDS, 4, "grpo")
    # group 1 [1,0,0,0]: mean 0.25, unbiased std sqrt((0.5625 + 3·0.0625)/3) = sqrt(0.25) = 0.5
    # → [0.75, −0.25, −0.25, −0.25] / (0.5 + 1e-6); group 2 all equal → 0 (no NaN)
    expected = torch.tensor([0.75, -0.25, -0.25, -0.25, 0, 0, 0, 0], dtype=torch.float64) / (0.5 + 1e-6)
    expected[4:] = 0.0
    torch.testing.assert_close(adv, expected, rtol=1e-15, atol=1e-15)


def test_dr_grpo_and_rloo_hand_computed():
    dr = compute_advantages(REWARDS, 4, "dr_grpo")
    torch.testing.assert_close(dr, torch.tensor([0.75, -0.25, -0.25, -0.25, 0, 0, 0, 0], dtype=torch.float64))
    rloo = compute_advantages(REWARDS, 4, "rloo")
    # R − mean of the other three: 1 − 0 = 1; 0 − 1/3 = −1/3; group 2: 0
    third = 1 / 3
    torch.testing.assert_close(rloo, torch.tensor([1, -third, -third, -third, 0, 0, 0, 0], dtype=torch.float64))


def test_reinforce_pp_whitens_over_the_batch():
    adv = compute_advantages(REWARDS, 4, "reinforce_pp")
    # centred [0.75, −0.25, −0.25, −0.25, 0, 0, 0, 0]; batch mean 0; unbiased std sqrt(0.75/7)
    std = math.sqrt((0.75**2 + 3 * 0.25**2) / 7)
    expected = torch.tensor([0.75, -0.25, -0.25, -0.25, 0, 0, 0, 0], dtype=torch.float64) / (std + 1e-6)
    torch.testing.assert_close(adv, expected, rtol=1e-14, atol=1e-15)
    assert adv.mean().abs().item() < 1e-15


@pytest.mark.parametrize("method", list(ADVANTAGES))
def test_all_equal_rewards_give_zero_not_nan(method):
    adv = compute_advantages(torch.ones(6), 3, method)
    assert torch.equal(adv, torch.zeros(6))


def test_errors():
    with pytest.raises(ValueError, match="batch size 7 is not divisible by group_size 4"):
        compute_advantages(torch.ones(7), 4)
    with pytest.raises(ValueError, match="group_size must be an integer >= 2 for advantage 'grpo', got 1"):
        compute_advantages(torch.ones(4), 1, "grpo")
    with pytest.raises(ValueError, match="group_size must be an integer >= 2 for advantage 'rloo'"):
        compute_advantages(torch.ones(4), 1, "rloo")
    with pytest.raises(ValueError, match="unknown advantage 'ppo'; valid advantages: grpo, dr_grpo, rloo"):
        compute_advantages(torch.ones(4), 2, "ppo")
    with pytest.raises(ValueError, match="rewards hold NaN"):
        compute_advantages(torch.tensor([1.0, float("nan")]), 2)
    with pytest.raises(ValueError, match=r"rewards must be a 1-D tensor of shape \(B,\), got \(2, 2\)"):
        compute_advantages(torch.ones(2, 2), 2)
    assert torch.equal(compute_advantages(torch.tensor([3.0]), 1, "dr_grpo"), torch.zeros(1))
