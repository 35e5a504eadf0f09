"""Limits and identities of docs/design.md §4: DGPO continuity, LN decay vs soft-clipping divergence, m = 1 ≡ GPPO on
HP, on-policy ≡ plain PG, and the gradient contract on random inputs (hypothesis)."""

from __future__ import annotations

from itertools import pairwise

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dgpo.diagnostics import weight_vs_pg
from dgpo.losses import LOSSES, get_loss
from table import DEFAULTS, table_weight


def weight_at(name: str, ratios: list[float], adv: float, **params) -> torch.Tensor:
    """w at each ratio, read off the gradient: w = −(∂loss/∂logp)/Â."""
    vs_pg = torch.tensor(weight_vs_pg(name, ratios, adv, **params), dtype=torch.float64)
    return vs_pg * torch.tensor(ratios, dtype=torch.float64)


@pytest.mark.parametrize(
    "params", [{}, {"n": 2.0, "m": 2.0}, {"n": 0.5, "m": 3.0, "eps_low": 0.1, "eps_high": 0.3}, {"n": 4.0, "m": 1.0}]
)
def test_dgpo_weight_is_continuous_at_both_boundaries(params):
    p = {**DEFAULTS["dgpo"], **params}
    low, high = 1 - p["eps_low"], 1 + p["eps_high"]
    h = 1e-12
    # Left boundary (Â < 0): LN just below, inside at and just above; all → 1 − ε_low.
    left = weight_at("dgpo", [low * (1 - h), low, low * (1 + h)], -1.0, **params)
    # Right boundary (Â > 0): inside at and just below, HP just above; all → 1 + ε_high.
    right = weight_at("dgpo", [high * (1 - h), high, high * (1 + h)], 1.0, **params)
    assert abs(left[0] - left[2]) < 1e-9 and abs(left[1] - low) < 1e-12
    assert abs(right[0] - right[2]) < 1e-9 and abs(right[1] - high) < 1e-12
    assert abs(left[0] - low) < 1e-9 and abs(right[2] - high) < 1e-9


RATIOS_TO_ZERO = [0.5, 0.1, 1e-2, 1e-3, 1e-4, 1e-6, 1e-8]


@pytest.mark.parametrize("n", [0.5, 1.0, 2.0])
def test_dgpo_ln_ratio_to_pg_decays_to_zero_monotonically(n):
    vs_pg = weight_vs_pg("dgpo", RATIOS_TO_ZERO, -1.0, n=n)
    assert all(a > b for a, b in pairwise(vs_pg))
    # (r/(1−ε))^n at r = 1e-8, ε = 0.2
    assert vs_pg[-1] == pytest.approx((1e-8 / 0.8) ** n, rel=1e-12)
    assert vs_pg[-1] < 1e-3


@pytest.mark.parametrize(("name", "scale"), [("cispo", 0.8), ("gppo", 0.8), ("ce_gppo", 0.5 * 0.8)])
def test_soft_clipping_ln_ratio_to_pg_diverges(name, scale):
    vs_pg = weight_vs_pg(name, RATIOS_TO_ZERO, -1.0)
    assert all(a < b for a, b in pairwise(vs_pg))
    # constant w = scale, so w/r = scale/r: 0.8/1e-8 = 8e7 for CISPO/GPPO
    assert vs_pg[-1] == pytest.approx(scale / 1e-8, rel=1e-12)


def test_dgpo_with_m_one_equals_gppo_on_hp():
    g = torch.Generator().manual_seed(0)
    old = -torch.rand(6, 5, generator=g, dtype=torch.float64) * 4
    ratios = 1.28 * (1.01 + 9 * torch.rand(6, 5, generator=g, dtype=torch.float64))  # all HP for ε_high = 0.28
    adv = torch.rand(6, generator=g, dtype=torch.float64) + 0.1
    mask = torch.ones(6, 5)
    results = []
    for name, params in (("dgpo", {"m": 1.0, "eps_high": 0.28}), ("gppo", {})):
        logp = (old + ratios.log()).requires_grad_(True)
        loss, metrics = get_loss(name, **params)(logp, old, adv, mask)
        assert metrics["region/hp"].item() == 1.0
        results.append((loss.detach(), torch.autograd.grad(loss.sum(), logp)[0]))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(LOSSES))
def test_on_policy_gradient_equals_plain_pg(name):
    # With logp == old_logp every ratio is 1, and every objective's gradient is −Â (w = 1), like PG.
    g = torch.Generator().manual_seed(1)
    logp = (-torch.rand(5, 7, generator=g, dtype=torch.float64) * 5).requires_grad_(True)
    adv = torch.randn(5, generator=g, dtype=torch.float64)
    mask = (torch.rand(5, 7, generator=g) > 0.3).to(torch.float64)
    loss, metrics = get_loss(name)(logp, logp.detach(), adv, mask)
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    torch.testing.assert_close(grad, -adv.unsqueeze(1) * mask, rtol=1e-14, atol=1e-14)
    assert metrics["region/inside"].item() == 1.0
    assert metrics["weight/vs_pg_mean"].item() == pytest.approx(1.0, abs=1e-14)


TOKEN_LEVEL = [name for name in LOSSES if name != "gspo"]


@pytest.mark.parametrize("name", TOKEN_LEVEL)
@given(
    log_ratio=st.lists(st.floats(-6.0, 4.0), min_size=1, max_size=12),
    adv=st.lists(st.floats(-3.0, 3.0), min_size=1, max_size=12),
    old=st.floats(-8.0, -0.01),
)
def test_gradient_contract_on_random_tokens(name, log_ratio, adv, old):
    k = min(len(log_ratio), len(adv))
    lr = torch.tensor(log_ratio[:k], dtype=torch.float64)
    a = torch.tensor(adv[:k], dtype=torch.float64)
    old_logp = torch.full((1, k), old, dtype=torch.float64)
    logp = (old_logp + lr).requires_grad_(True)
    loss, _ = get_loss(name)(logp, old_logp, a.unsqueeze(0), torch.ones(1, k))
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    r = torch.exp(lr)
    expected = -a * table_weight(name, r, a)
    torch.testing.assert_close(grad[0], expected, rtol=1e-10, atol=1e-12)
