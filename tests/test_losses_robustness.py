"""Bad and extreme inputs: clear errors, no NaN, dtype handling, the ±20 log-ratio clamp."""

from __future__ import annotations

import math

import pytest
import torch

from dgpo.losses import LOSSES, get_loss
from dgpo.metrics import OBJECTIVE_METRIC_KEYS, REGION_KEYS
from table import table_weight

ALL = list(LOSSES)


def batch(dtype=torch.float64, b=3, t=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    logp = -torch.rand(b, t, generator=g, dtype=torch.float64) * 3
    old = logp + 0.3 * torch.randn(b, t, generator=g, dtype=torch.float64)
    adv = torch.randn(b, generator=g, dtype=torch.float64)
    return logp.to(dtype), old.to(dtype), adv.to(dtype), torch.ones(b, t)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_extreme_log_probs_are_finite_and_use_the_clamped_ratio(name, dtype):
    # logp down to −1e4 and log-ratios of ±1e3: the ratio is exp(±20) and the weight is taken there.
    logp = torch.tensor([[-1e4, -1e4, -5.0, -1e4], [-3.0, -1e4, -1e3, -0.5]], dtype=dtype)
    old = torch.tensor([[-1e4 + 1e3, -1e4 - 1e3, -5.0 - 1e3, -1e4], [-3.0 + 1e3, -9e3, -1.0, -2.0]], dtype=dtype)
    adv = torch.tensor([-1.5, 2.0], dtype=dtype)
    logp.requires_grad_(True)
    loss, metrics = get_loss(name)(logp, old, adv, torch.ones(2, 4))
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    assert loss.dtype == torch.float32 and grad.dtype == dtype
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    assert all(torch.isfinite(v) for v in metrics.values())
    if name != "gspo":
        log_r = (logp.detach().double() - old.double()).clamp(-20.0, 20.0)  # docs/design.md §2: clamp log r to ±20
        adv_t = adv.double().unsqueeze(1).expand(2, 4)
        expected = (-adv_t * table_weight(name, torch.exp(log_r), adv_t)).to(dtype)
        torch.testing.assert_close(grad, expected, rtol=1e-5 if dtype == torch.float32 else 1e-2, atol=1e-30)


@pytest.mark.parametrize("name", ALL)
def test_bf16_inputs_are_upcast_and_float64_stays_float64(name):
    logp, old, adv, mask = batch(torch.float64)
    loss64, _ = get_loss(name)(logp, old, adv, mask)
    assert loss64.dtype == torch.float64
    loss_bf16, _ = get_loss(name)(logp.bfloat16(), old.bfloat16(), adv.bfloat16(), mask)
    assert loss_bf16.dtype == torch.float32
    # bf16 has ~3 significant digits; the upcast loss must agree with float64 at that level.
    torch.testing.assert_close(loss_bf16.double(), loss64, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("field", ["logp", "old_logp", "adv"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_on_active_tokens_raises(name, field, bad):
    logp, old, adv, mask = batch()
    tensors = {"logp": logp, "old_logp": old, "adv": adv}
    tensors[field] = tensors[field].clone()
    tensors[field].view(-1)[1] = bad
    with pytest.raises(ValueError, match=rf"{field} holds NaN or Inf"):
        get_loss(name)(tensors["logp"], tensors["old_logp"], tensors["adv"], mask)


@pytest.mark.parametrize("name", ALL)
def test_all_zero_mask_gives_zero_loss_and_gradient(name):
    logp, old, adv, _ = batch()
    logp.requires_grad_(True)
    loss, metrics = get_loss(name)(logp, old, adv, torch.zeros(3, 4))
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    assert torch.equal(loss, torch.zeros_like(loss)) and torch.equal(grad, torch.zeros_like(grad))
    assert set(metrics) == set(OBJECTIVE_METRIC_KEYS)
    assert all(v.item() == 0.0 for v in metrics.values())


@pytest.mark.parametrize("name", ALL)
def test_metrics_are_detached_scalars_with_the_documented_keys(name):
    logp, old, adv, mask = batch()
    logp.requires_grad_(True)
    _, metrics = get_loss(name)(logp, old, adv, mask)
    assert tuple(metrics) == OBJECTIVE_METRIC_KEYS
    for key, value in metrics.items():
        assert value.dim() == 0 and not value.requires_grad, key
    fractions = sum(metrics[k].item() for k in REGION_KEYS)
    assert fractions == pytest.approx(1.0, abs=1e-12)


def test_metrics_hand_computed_for_dgpo():
    # Four tokens, old_logp = 0: r = 0.5 (LN, Â=−1), 1.0 (inside), 2.0 (HP, Â=+1), 0.25 (LN, Â=−1); last one padded.
    logp = torch.tensor([[math.log(0.5), 0.0], [math.log(2.0), math.log(0.25)]], dtype=torch.float64)
    adv = torch.tensor([[-1.0, 1.0], [1.0, -1.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1], [1, 0]])
    _, m = get_loss("dgpo")(logp, torch.zeros_like(logp), adv, mask)
    # active: r = 0.5, 1, 2 → mean 3.5/3, max 2
    assert m["ratio/mean"].item() == pytest.approx(3.5 / 3, rel=1e-12)
    assert m["ratio/max"].item() == pytest.approx(2.0, rel=1e-12)
    # w/r: LN 0.5/0.8 = 0.625; inside 1; HP sqrt(1.2·2)/2 = 0.7745967
    vs_pg = [0.625, 1.0, math.sqrt(2.4) / 2]
    assert m["weight/vs_pg_mean"].item() == pytest.approx(sum(vs_pg) / 3, rel=1e-12)
    assert m["weight/vs_pg_max"].item() == pytest.approx(1.0, rel=1e-12)
    assert m["weight/ln_vs_pg_max"].item() == pytest.approx(0.625, rel=1e-12)
    assert [m[k].item() for k in REGION_KEYS] == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0, 0, 0])


def test_zero_advantage_tokens_are_in_no_clipping_region():
    # old_logp = 0. Row 0: Â = +1, r = 2 (HP). Row 1: Â = 0, r = 2 and 0.5 (HP and LP if Â = 0 counted as positive).
    # Row 2: Â = −1, r = 0.5 (LN). Second tokens of rows 0 and 2 are padding.
    logp = torch.log(torch.tensor([[2.0, 1.0], [2.0, 0.5], [0.5, 1.0]], dtype=torch.float64))
    adv = torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64)
    mask = torch.tensor([[1, 0], [1, 1], [1, 0]])
    _, m = get_loss("dgpo")(logp, torch.zeros_like(logp), adv, mask)
    # 4 active tokens: HP 1, LN 1, zero_adv 2, nothing inside/LP/HN
    assert [m[k].item() for k in REGION_KEYS] == pytest.approx([0, 1 / 4, 1 / 4, 0, 0, 2 / 4], abs=1e-15)
    assert (m["tokens/active"].item(), m["tokens/nonzero_adv"].item()) == (4.0, 2.0)
    # w/r over the two Â ≠ 0 tokens only: HP sqrt(1.2·2)/2 = 0.7745967, LN 0.5/0.8 = 0.625
    assert m["weight/vs_pg_mean"].item() == pytest.approx((math.sqrt(2.4) / 2 + 0.625) / 2, rel=1e-12)
    assert m["weight/vs_pg_max"].item() == pytest.approx(math.sqrt(2.4) / 2, rel=1e-12)  # not the zero row's 1
    # grpo drops both boundary tokens: nothing is left for w/r, although the Â = 0 row has r inside its old LP
    _, g = get_loss("grpo")(logp, torch.zeros_like(logp), adv, mask)
    assert (g["weight/vs_pg_mean"].item(), g["weight/vs_pg_max"].item()) == (0.0, 0.0)
    assert g["region/ln"].item() + g["region/hp"].item() == pytest.approx(2 / 4)


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        ({"old_logp": (3, 5)}, r"old_logp shape \(3, 5\) does not match logp shape \(3, 4\)"),
        ({"mask": (2, 4)}, r"mask shape \(2, 4\) does not match logp shape \(3, 4\)"),
        ({"adv": (4,)}, r"adv shape \(4,\) does not match logp shape \(3, 4\)"),
        ({"logp": (12,), "old_logp": (12,), "mask": (12,)}, r"logp must have shape \(B, T\), got \(12,\)"),
    ],
)
def test_shape_mismatch_names_both_shapes(shapes, message):
    sizes = {"logp": (3, 4), "old_logp": (3, 4), "adv": (3,), "mask": (3, 4), **shapes}
    tensors = {k: -torch.rand(*v, dtype=torch.float64) for k, v in sizes.items()}
    tensors["mask"] = torch.ones(*sizes["mask"])
    with pytest.raises(ValueError, match=message):
        get_loss("dgpo")(tensors["logp"], tensors["old_logp"], tensors["adv"], tensors["mask"])


def test_non_binary_mask_and_non_tensor_inputs_raise():
    logp, old, adv, mask = batch()
    with pytest.raises(ValueError, match="mask must hold only 0 and 1"):
        get_loss("grpo")(logp, old, adv, mask * 2)
    with pytest.raises(TypeError, match=r"adv must be a torch\.Tensor"):
        get_loss("grpo")(logp, old, [1.0, 2.0, 3.0], mask)
    with pytest.raises(TypeError, match="floating point"):
        get_loss("grpo")(logp.long(), old, adv, mask)


def test_nan_on_padding_is_ignored():
    logp, old, adv, mask = batch()
    logp[0, 3] = float("nan")
    old[1, 2] = float("-inf")
    mask[0, 3] = 0
    mask[1, 2] = 0
    loss, _ = get_loss("cispo")(logp.requires_grad_(True), old, adv, mask)
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    assert loss[0, 3] == 0 and grad[0, 3] == 0 and grad[1, 2] == 0


def reference_metrics(name: str, logp, old, adv, mask) -> dict[str, float]:
    """The metrics from boolean masks and the weight table of docs/design.md §4, written independently of dgpo.metrics.

    Tokens with Â = 0 are in no region but ``zero_adv``, and outside the ``weight/*`` statistics."""
    active = mask.bool()
    adv_t = adv.unsqueeze(1).expand_as(logp) if adv.dim() == 1 else adv
    r = torch.exp((logp - old).clamp(-20, 20))
    if name == "gspo":
        seq = torch.exp(((logp - old) * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True).clamp(min=1))
        region_r = seq.expand_as(r)
        el, eh = 3e-4, 4e-4
        w = torch.where(((region_r < 1 - el) & (adv_t < 0)) | ((region_r > 1 + eh) & (adv_t >= 0)), 0.0, region_r)
    else:
        region_r = r
        el = 0.2 if name in ("pg", "sapo") else table_weight.__globals__["DEFAULTS"][name].get("eps_low")
        eh = 0.2 if name in ("pg", "sapo") else table_weight.__globals__["DEFAULTS"][name].get("eps_high")
        w = table_weight(name, r, adv_t)
    below, above, neg, pos, zero = region_r < 1 - el, region_r > 1 + eh, adv_t < 0, adv_t > 0, adv_t == 0
    scored = active & ~zero
    vs_pg = (w / r)[scored]
    regions = {
        "inside": ~below & ~above & ~zero,
        "ln": below & neg,
        "hp": above & pos,
        "lp": below & pos,
        "hn": above & neg,
        "zero_adv": zero,
    }
    n = active.sum().item()
    ln_values = (w / r)[active & regions["ln"]]
    out = {
        "ratio/mean": region_r[active].mean().item(),
        "ratio/max": region_r[active].max().item(),
        "weight/vs_pg_mean": vs_pg.mean().item(),
        "weight/vs_pg_max": vs_pg.max().item(),
        "tokens/active": float(n),
        "tokens/nonzero_adv": float(scored.sum().item()),
        "weight/ln_vs_pg_max": ln_values.max().item() if ln_values.numel() else 0.0,
    }
    out.update({f"region/{k}": (v & active).sum().item() / n for k, v in regions.items()})
    # Where the gradient goes: each region's share of Σ|Â·w| over active tokens.
    abs_grad = (adv_t.abs() * w).masked_fill(~active, 0.0)
    out["grad/abs_sum"] = abs_grad.sum().item()
    for k in ("inside", "ln", "hp", "lp", "hn"):
        out[f"grad_share/{k}"] = abs_grad[regions[k]].sum().item() / out["grad/abs_sum"]
    return out


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("per_token_adv", [False, True])
@pytest.mark.parametrize("mask_dtype", [torch.bool, torch.int32, torch.float64])
@pytest.mark.parametrize("padding", [float("nan"), -1.0])  # NaN takes the exact-check path, finite the fast one
def test_metrics_match_an_independent_boolean_reference(name, per_token_adv, mask_dtype, padding):
    g = torch.Generator().manual_seed(7)
    b, t = 6, 9
    old = -torch.rand(b, t, generator=g, dtype=torch.float64) * 3
    # A wide log-ratio spread so every region is populated; GSPO's rows get distinct sequence ratios.
    logp = old + 0.6 * torch.randn(b, t, generator=g, dtype=torch.float64)
    adv = torch.randn(b, t, generator=g, dtype=torch.float64) if per_token_adv else torch.randn(b, generator=g)
    adv = adv.to(torch.float64)
    adv[2] = 0.0  # an all-correct or all-wrong group: Â = 0 tokens belong to no clipping region
    if per_token_adv:
        adv[3, ::2] = 0.0
    mask = torch.rand(b, t, generator=g) > 0.3
    mask[0] = False  # a fully padded sequence
    logp[~mask] = padding
    _, metrics = get_loss(name)(logp, old, adv, mask.to(mask_dtype))
    clean_logp = torch.where(mask, logp, old)
    expected = reference_metrics(name, clean_logp, old, adv, mask.to(torch.float64))
    for key, value in expected.items():
        assert metrics[key].item() == pytest.approx(value, rel=1e-12, abs=1e-12), key
    if name != "gspo":  # the data must populate the boundary regions, or the check above proves little
        assert metrics["region/ln"].item() > 0 and metrics["region/hp"].item() > 0
    assert metrics["region/zero_adv"].item() > 0


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("per_token_adv", [False, True])
def test_garbage_on_padding_gives_the_same_loss_gradient_and_metrics_as_clean_padding(name, per_token_adv):
    # NaN/-Inf padding takes the exact-check path, finite padding the fast one: both must agree exactly.
    logp, old, adv, _ = batch(b=4, t=6, seed=3)
    if per_token_adv:
        adv = adv.unsqueeze(1).expand(4, 6).clone()
    mask = torch.ones(4, 6)
    mask[0, 4:], mask[2, 1:] = 0, 0
    results = []
    for fill in (0.0, float("nan"), float("-inf")):
        dirty = logp.clone()
        dirty[mask == 0] = fill
        old_dirty = old.clone()
        old_dirty[mask == 0] = -fill if fill == fill else fill
        leaf = dirty.requires_grad_(True)
        loss, metrics = get_loss(name)(leaf, old_dirty, adv, mask)
        (grad,) = torch.autograd.grad(loss.sum(), leaf)
        results.append((loss.detach(), grad, {k: v.item() for k, v in metrics.items()}))
    for loss, grad, metrics in results[1:]:
        assert torch.equal(loss, results[0][0]) and torch.equal(grad, results[0][1])
        assert metrics == results[0][2]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_autograd_keeps_one_float32_tensor_per_call(name, dtype):
    """The decoupled surrogate saves only the slope −Â·w (B, T, compute dtype) for backward."""
    logp, old, adv, mask = batch(dtype, b=5, t=7)
    saved = []

    def pack(tensor):
        saved.append((tuple(tensor.shape), tensor.dtype))
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss, _ = get_loss(name)(logp.requires_grad_(True), old, adv, mask)
    assert saved == [((5, 7), torch.float32)]
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    assert grad.dtype == dtype
    # Out-of-place use of the loss is free; an in-place change is either differentiated correctly or, where the
    # output is the saved slope, refused by autograd — never silently turned into a wrong gradient.
    loss, _ = get_loss(name)(logp, old, adv, mask)
    (doubled,) = torch.autograd.grad((loss * 2.0).sum(), logp)
    torch.testing.assert_close(doubled.float(), 2 * grad.float())
    loss, _ = get_loss(name)(logp, old, adv, mask)
    loss.mul_(2.0)
    try:
        (in_place,) = torch.autograd.grad(loss.sum(), logp)
    except RuntimeError as error:
        assert "modified by an inplace operation" in str(error)
    else:
        torch.testing.assert_close(in_place.float(), 2 * grad.float())
