"""Every objective × every region: value and gradient equal the public readable reference
(:mod:`dgpo.losses.reference`, float64, 1e-10), and the gradient equals −Â·w with w from the table of
docs/design.md §4 (tests/table.py, a third, closed-form path).

Tensors are built to land in one region each (the ``region/*`` metric must be 1.0 for it), away from the
boundaries where the references' min/clamp are not differentiable. Each case also carries a padding column
holding NaN/−inf, which must give zero loss and zero gradient.
"""

from __future__ import annotations

import math

import pytest
import torch

from dgpo.losses import get_loss
from dgpo.losses.reference import REFERENCES
from table import DEFAULTS, table_weight

TOL = {"rtol": 1e-10, "atol": 1e-10}

CONFIGS = [
    ("pg", {}),
    ("grpo", {}),
    ("grpo", {"dual_clip_c": 3.0}),
    ("grpo", {"eps_low": 0.1, "eps_high": 0.3}),
    ("dapo", {}),
    ("cispo", {}),
    ("cispo", {"eps_low": 1.5, "eps_high": 4.0}),
    ("gppo", {}),
    ("gppo", {"dual_clip_c": None}),
    ("ce_gppo", {}),
    ("ce_gppo", {"beta1": 0.75, "beta2": 1.5}),
    ("aspo", {}),
    ("sapo", {}),
    ("sapo", {"tau_pos": 2.0, "tau_neg": 0.5}),
    ("dgpo", {}),
    ("dgpo", {"n": 2.0, "m": 2.0}),
    ("dgpo", {"n": 0.5, "m": 3.0, "eps_low": 0.1, "eps_high": 0.3}),
    ("dgpo", {"m": 1.0}),
]


def region_cases(name: str, params: dict) -> list[tuple[str, str, list[float], float]]:
    """(case id, expected region label, ratios, advantage sign) for one configured objective."""
    p = {**DEFAULTS[name], **params}
    el, eh, c = p.get("eps_low", 0.2), p.get("eps_high", 0.2), p.get("dual_clip_c")
    hn_top = min(c, 10.0) if c is not None else 10.0
    low = max(1 - el, 0.0)
    inside = [low + 0.1 * (1 - low), low + 0.5 * (1 - low), 1.0, 1 + eh / 2, 1 + 0.9 * eh]
    cases = [
        ("inside+", "inside", inside, 1.0),
        ("inside-", "inside", inside, -1.0),
        ("hp", "hp", [(1 + eh) * f for f in (1.05, 2.0, 5.0, 40.0)], 1.0),
        ("hn", "hn", [1 + eh + f * (hn_top - 1 - eh) for f in (0.05, 0.5, 0.95)], -1.0),
    ]
    if el < 1:
        cases += [
            ("ln", "ln", [(1 - el) * f for f in (0.95, 0.5, 0.1, 1e-3, 1e-6)], -1.0),
            ("lp", "lp", [(1 - el) * f for f in (0.95, 0.5, 0.1)], 1.0),
        ]
    else:  # cispo without a lower bound: small ratios stay "inside"
        cases += [("small-", "inside", [0.5, 0.1, 1e-4], -1.0), ("small+", "inside", [0.5, 0.1, 1e-4], 1.0)]
    if c is not None:
        cases.append(("hn-beyond-c", "hn", [c * 1.1, c * 3.0], -1.0))
    if name == "aspo":
        cases.append(("lp-capped", "lp", [0.5 / c, 0.1 / c], 1.0))
    return cases


def build(ratios: list[float], sign: float, pad: bool = True):
    """One sequence per ratio (T = 1 active token, plus a padding token holding NaN/−inf)."""
    k = len(ratios)
    old = torch.linspace(-3.0, -0.2, k, dtype=torch.float64)
    log_r = torch.tensor([math.log(r) for r in ratios], dtype=torch.float64)
    adv = sign * torch.linspace(0.3, 2.1, k, dtype=torch.float64)
    if not pad:
        return (old + log_r).unsqueeze(1), old.unsqueeze(1), adv, torch.ones(k, 1)
    logp = torch.stack([old + log_r, torch.full((k,), float("nan"), dtype=torch.float64)], dim=1)
    old_logp = torch.stack([old, torch.full((k,), float("-inf"), dtype=torch.float64)], dim=1)
    mask = torch.tensor([[1.0, 0.0]] * k)
    return logp, old_logp, adv, mask


CASES = [
    pytest.param(name, params, label, ratios, sign, id=f"{name}{params or ''}-{case}")
    for name, params in CONFIGS
    for case, label, ratios, sign in region_cases(name, params)
]


@pytest.mark.parametrize(("name", "params", "label", "ratios", "sign"), CASES)
def test_value_and_gradient_match_reference(name, params, label, ratios, sign):
    logp, old_logp, adv, mask = build(ratios, sign)
    logp.requires_grad_(True)
    loss, metrics = get_loss(name, **params)(logp, old_logp, adv, mask)
    (grad,) = torch.autograd.grad(loss.sum(), logp)

    assert metrics[f"region/{label}"].item() == 1.0, f"case does not hit region {label}: {metrics}"
    # Padding column: zero loss, zero gradient, despite NaN/−inf there.
    assert torch.equal(loss[:, 1], torch.zeros_like(loss[:, 1]))
    assert torch.equal(grad[:, 1], torch.zeros_like(grad[:, 1]))

    # The public reference takes the same padded batch (NaN/−inf padding included).
    ref_logp = logp.detach().clone().requires_grad_(True)
    ref_loss = REFERENCES[name](ref_logp, old_logp, adv, mask, **params)
    (ref_grad,) = torch.autograd.grad(ref_loss.sum(), ref_logp)
    torch.testing.assert_close(grad, ref_grad, **TOL)
    torch.testing.assert_close(loss, ref_loss.detach(), **TOL)

    adv_t = adv.unsqueeze(1)

    r = torch.tensor(ratios, dtype=torch.float64).unsqueeze(1)
    expected_grad = -adv_t * table_weight(name, r, adv_t, **params)
    torch.testing.assert_close(grad[:, :1], expected_grad, **TOL)


GSPO_CASES = {
    # case: (region, sequence ratio s, sign of Â); default ε = 3e-4 / 4e-4
    "inside+": ("inside", math.exp(1e-4), 1.0),
    "inside-": ("inside", math.exp(-2e-4), -1.0),
    "ln": ("ln", 0.99, -1.0),
    "lp": ("lp", 0.97, 1.0),
    "hp": ("hp", 1.02, 1.0),
    "hn": ("hn", 1.5, -1.0),
}


@pytest.mark.parametrize("case", list(GSPO_CASES))
def test_gspo_sequence_ratio_matches_reference(case):
    label, s, sign = GSPO_CASES[case]
    offsets = torch.tensor([-0.3, 0.1, 0.25, -0.05], dtype=torch.float64)  # sum 0: mean log r = log s
    b = 3
    old = torch.linspace(-2.0, -0.5, 4 * b, dtype=torch.float64).view(b, 4)
    log_r = (math.log(s) + offsets).expand(b, 4)
    adv = sign * torch.tensor([0.4, 1.0, 1.7], dtype=torch.float64)
    pad = torch.full((b, 1), float("nan"), dtype=torch.float64)
    logp = torch.cat([old + log_r, pad], dim=1).requires_grad_(True)
    old_logp = torch.cat([old, pad], dim=1)
    mask = torch.cat([torch.ones(b, 4), torch.zeros(b, 1)], dim=1)

    loss, metrics = get_loss("gspo")(logp, old_logp, adv, mask)
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    assert metrics[f"region/{label}"].item() == 1.0
    assert metrics["ratio/mean"].item() == pytest.approx(s, rel=1e-12)

    ref_logp = logp.detach().clone().requires_grad_(True)
    ref_loss = REFERENCES["gspo"](ref_logp, old_logp, adv, mask)
    (ref_grad,) = torch.autograd.grad(ref_loss.sum(), ref_logp)
    torch.testing.assert_close(loss, ref_loss.detach(), **TOL)
    torch.testing.assert_close(grad, ref_grad, **TOL)
    # Table: w = s (the same for every token of the sequence), 0 where s is clipped.
    w = 0.0 if label in ("ln", "hp") else s
    torch.testing.assert_close(grad[:, :4], (-adv * w).unsqueeze(1).expand(b, 4), **TOL)
    assert torch.equal(grad[:, 4], torch.zeros(b, dtype=torch.float64))


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_per_token_advantages_equal_broadcast_sequence_advantages(name):
    # adv of shape (B, T) holding the same value per row must give exactly the (B,) result.
    g = torch.Generator().manual_seed(3)
    logp = -torch.rand(4, 6, generator=g, dtype=torch.float64) * 3
    old = logp + 0.4 * torch.randn(4, 6, generator=g, dtype=torch.float64)
    adv = torch.tensor([1.0, -0.5, 0.0, 2.0], dtype=torch.float64)
    mask = (torch.rand(4, 6, generator=g) > 0.2).float()
    fn = get_loss(name)
    a = logp.clone().requires_grad_(True)
    b = logp.clone().requires_grad_(True)
    loss_a, _ = fn(a, old, adv, mask)
    loss_b, _ = fn(b, old, adv.unsqueeze(1).expand(4, 6), mask)
    torch.testing.assert_close(loss_a, loss_b, rtol=0, atol=0)
    (ga,) = torch.autograd.grad(loss_a.sum(), a)
    (gb,) = torch.autograd.grad(loss_b.sum(), b)
    torch.testing.assert_close(ga, gb, rtol=0, atol=0)


@pytest.mark.parametrize("name", list(DEFAULTS))
@pytest.mark.parametrize("per_token_adv", [False, True], ids=["adv(B)", "adv(B,T)"])
def test_public_reference_matches_on_random_batches(name, per_token_adv):
    # Random ratios in every region, ragged padding holding NaN and −inf, Â = 0 rows: REFERENCES[name] and
    # get_loss(name) agree in value and gradient on the whole (B, T) batch.
    g = torch.Generator().manual_seed(11)
    b, t = 6, 9
    old_logp = -3 * torch.rand(b, t, generator=g, dtype=torch.float64)
    logp = (old_logp + 0.8 * torch.randn(b, t, generator=g, dtype=torch.float64)).clamp(max=0.0)
    lengths = torch.tensor([9, 7, 5, 3, 1, 8])
    mask = torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)
    logp = logp.masked_fill(~mask, float("nan"))
    old_logp = old_logp.masked_fill(~mask, float("-inf"))
    adv = torch.tensor([1.0, -0.5, 0.0, 2.0, -1.5, 0.7], dtype=torch.float64)
    if per_token_adv:
        adv = (adv.unsqueeze(1) * torch.rand(b, t, generator=g, dtype=torch.float64)).masked_fill(~mask, 0.0)

    logp.requires_grad_(True)
    loss, _ = get_loss(name)(logp, old_logp, adv, mask)
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    ref_logp = logp.detach().clone().requires_grad_(True)
    ref_loss = REFERENCES[name](ref_logp, old_logp, adv, mask)
    (ref_grad,) = torch.autograd.grad(ref_loss.sum(), ref_logp)
    torch.testing.assert_close(loss, ref_loss.detach(), **TOL)
    torch.testing.assert_close(grad, ref_grad, **TOL)
