"""Aggregation modes (verl's names): hand-computed values and invariance under micro-batch splits."""

from __future__ import annotations

import pytest
import torch

from dgpo.aggregation import AGGREGATIONS, aggregate
from dgpo.losses import get_loss

# loss rows [1, 2, 3] (3 tokens active) and [4, 5, 99] (2 active: 99 is padding)
LOSS = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 99.0]], dtype=torch.float64)
MASK = torch.tensor([[1, 1, 1], [1, 1, 0]])


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("token-mean", (1 + 2 + 3 + 4 + 5) / 5),  # 15/5 = 3
        ("seq-mean-token-mean", ((1 + 2 + 3) / 3 + (4 + 5) / 2) / 2),  # (2 + 4.5)/2 = 3.25
        ("seq-mean-token-sum", (6 + 9) / 2),  # 7.5
        ("seq-mean-token-sum-norm", (6 + 9) / 2 / 3),  # 7.5 / T = 2.5
    ],
)
def test_hand_computed_values(mode, expected):
    assert aggregate(LOSS, MASK, mode).item() == pytest.approx(expected, rel=1e-15)


def test_global_counts_and_norm_length():
    assert aggregate(LOSS, MASK, "token-mean", global_tokens=10).item() == pytest.approx(1.5)
    assert aggregate(LOSS, MASK, "seq-mean-token-sum", global_seqs=5).item() == pytest.approx(3.0)
    assert aggregate(LOSS, MASK, "seq-mean-token-sum-norm", norm_length=5).item() == pytest.approx(1.5)


def test_fully_masked_rows_are_excluded_and_empty_gives_zero():
    loss = torch.cat([LOSS, torch.tensor([[7.0, 7.0, 7.0]], dtype=torch.float64)])
    mask = torch.cat([MASK, torch.zeros(1, 3, dtype=MASK.dtype)])
    assert aggregate(loss, mask, "seq-mean-token-mean").item() == pytest.approx(3.25)
    for mode in AGGREGATIONS:
        assert aggregate(LOSS, torch.zeros_like(MASK), mode).item() == 0.0


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="unknown aggregation 'mean'; valid aggregations: token-mean"):
        aggregate(LOSS, MASK, "mean")
    with pytest.raises(ValueError, match=r"mask shape \(2, 2\) must equal per_token_loss shape \(2, 3\)"):
        aggregate(LOSS, MASK[:, :2], "token-mean")
    with pytest.raises(ValueError, match="global_tokens must be > 0"):
        aggregate(LOSS, MASK, "token-mean", global_tokens=0)


@pytest.mark.parametrize("mode", AGGREGATIONS)
@pytest.mark.parametrize("micro", [1, 2, 4, 8])
def test_gradient_is_invariant_to_micro_batch_split(mode, micro):
    # B = 8 split into 8/micro micro-batches of `micro` rows; with the global counts, the summed gradient equals
    # the full-batch gradient exactly (up to float64 rounding).
    g = torch.Generator().manual_seed(7)
    logp = -torch.rand(8, 6, generator=g, dtype=torch.float64) * 3
    old = logp + 0.5 * torch.randn(8, 6, generator=g, dtype=torch.float64)
    adv = torch.randn(8, generator=g, dtype=torch.float64)
    mask = (torch.rand(8, 6, generator=g) > 0.3).long()
    mask[3] = 0  # one fully masked sequence
    objective = get_loss("dgpo")
    global_tokens = int(mask.sum())
    global_seqs = int((mask.sum(1) > 0).sum())

    full = logp.clone().requires_grad_(True)
    aggregate(objective(full, old, adv, mask)[0], mask, mode).backward()

    split = logp.clone().requires_grad_(True)
    for rows in torch.arange(8).split(micro):
        per_token, _ = objective(split[rows], old[rows], adv[rows], mask[rows])
        kwargs = {"global_tokens": global_tokens, "global_seqs": global_seqs}
        aggregate(per_token, mask[rows], mode, **kwargs).backward()
    torch.testing.assert_close(split.grad, full.grad, rtol=1e-12, atol=1e-15)
