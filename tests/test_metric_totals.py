"""Metrics combined over micro-batches equal the metrics of the one big batch (dgpo.metrics.MetricTotals)."""

from __future__ import annotations

import pytest
import torch

from dgpo.losses import LOSSES, get_loss
from dgpo.metrics import MAX_KEYS, OBJECTIVE_METRIC_KEYS, MetricTotals


def big_batch(seed=0, b=12, t=7):
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(b, t, generator=g, dtype=torch.float64) * 3
    logp = old + 0.6 * torch.randn(b, t, generator=g, dtype=torch.float64)
    adv = torch.randn(b, generator=g, dtype=torch.float64)
    adv[[1, 2, 7]] = 0.0  # groups without signal
    mask = (torch.rand(b, t, generator=g) > 0.3).double()
    mask[4] = 0  # an empty completion
    mask[9, 1:] = 0  # a one-token completion
    return logp, old, adv, mask


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("splits", [(6, 6), (2, 5, 5), (1, 3, 8), (4, 4, 4)])
def test_totals_over_micro_batches_equal_the_big_batch(name, splits):
    logp, old, adv, mask = big_batch()
    objective = get_loss(name)
    _, whole = objective(logp, old, adv, mask)
    totals = MetricTotals()
    start = 0
    for size in splits:
        part = slice(start, start + size)
        totals.add(objective(logp[part], old[part], adv[part], mask[part])[1])
        start += size
    combined = totals.reduce()
    assert set(combined) == set(OBJECTIVE_METRIC_KEYS)
    for key in OBJECTIVE_METRIC_KEYS:
        assert combined[key] == pytest.approx(whole[key].item(), rel=1e-12, abs=1e-14), key
    assert totals.reduce() == {}  # reduce clears


def test_a_mean_of_micro_batch_means_is_not_the_big_batch_value():
    """The control: with unequal token counts, averaging per-micro-batch fractions gives another number."""
    logp, old, adv, mask = big_batch()
    objective = get_loss("dgpo")
    _, whole = objective(logp, old, adv, mask)
    parts = [objective(logp[s], old[s], adv[s], mask[s])[1] for s in (slice(0, 2), slice(2, 12))]
    naive = sum(p["region/zero_adv"].item() for p in parts) / 2
    assert abs(naive - whole["region/zero_adv"].item()) > 0.05


def test_reductions_across_processes_are_applied_to_sums_and_maxima():
    logp, old, adv, mask = big_batch()
    _, metrics = get_loss("cispo")(logp, old, adv, mask)
    totals = MetricTotals()
    totals.add(metrics)
    # Two identical "processes": sums double (means unchanged, counts doubled), maxima unchanged.
    doubled = totals.reduce(sum_all=lambda t: 2 * t, max_all=lambda t: t)
    assert doubled["tokens/active"] == 2 * metrics["tokens/active"].item()
    assert doubled["region/ln"] == pytest.approx(metrics["region/ln"].item(), rel=1e-12)
    for key in MAX_KEYS:
        assert doubled[key] == metrics[key].item()


def test_trainer_keys_need_a_count_and_unknown_keys_are_refused():
    totals = MetricTotals(mean_over={"entropy": "tokens/active"})
    totals.add({"entropy": torch.tensor(2.0), "tokens/active": torch.tensor(3.0)})
    totals.add({"entropy": torch.tensor(1.0), "tokens/active": torch.tensor(1.0)})
    assert totals.reduce() == {"entropy": pytest.approx(7.0 / 4.0), "tokens/active": 4.0}
    with pytest.raises(KeyError, match="no reduction"):
        MetricTotals().add({"made/up": torch.tensor(1.0)})
