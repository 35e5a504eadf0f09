"""Avg@k / Pass@k estimators against brute-force enumeration."""

from __future__ import annotations

from itertools import combinations

import pytest

from dgpo.eval.passk import k_values, pass_at_k, summarize_benchmark


def brute_force_pass_at_k(n: int, c: int, k: int) -> float:
    """Fraction of all k-subsets of n samples (the first c correct) holding at least one correct sample."""
    subsets = list(combinations(range(n), k))
    return sum(any(i < c for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_unbiased_estimator_equals_enumeration(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_force_pass_at_k(n, c, k), abs=1e-12)


def test_n_equals_k_is_any_correct_and_k_one_is_the_mean():
    assert pass_at_k(32, 0, 32) == 0.0
    assert pass_at_k(32, 1, 32) == 1.0
    assert pass_at_k(32, 8, 1) == pytest.approx(8 / 32)


def test_large_n_is_stable():
    # 1 − C(1000−3, 32)/C(1000, 32) = 1 − (968·967·966)/(1000·999·998)
    expected = 1 - (968 * 967 * 966) / (1000 * 999 * 998)
    assert pass_at_k(1000, 3, 32) == pytest.approx(expected, rel=1e-12)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match=r"k must be in \[1, n=4\], got 5"):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError, match="k must be in"):
        pass_at_k(4, 1, 0)
    with pytest.raises(ValueError, match="need 0 <= c <= n"):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError, match="k must be >= 1"):
        k_values(0)


def test_k_values():
    assert k_values(1) == [1]
    assert k_values(32) == [1, 2, 4, 8, 16, 32]
    assert k_values(6) == [1, 2, 4, 6]


def test_summarize_benchmark_hand_computed():
    # p1: 2/4 correct, p2: 0/4, p3: 4/4 (first k = 4 samples; a fifth is ignored)
    result = summarize_benchmark({"p1": [True, False, True, False], "p2": [False] * 4, "p3": [True] * 4 + [False]}, k=4)
    assert result["avg"] == pytest.approx((0.5 + 0 + 1) / 3)
    # pass@1 = avg; pass@2 for p1 = 1 − C(2,2)/C(4,2) = 5/6; pass@4: p1 1, p2 0, p3 1
    assert result["pass"][1] == pytest.approx(0.5)
    assert result["pass"][2] == pytest.approx((5 / 6 + 0 + 1) / 3)
    assert result["pass"][4] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="k=8 is larger than the samples present"):
        summarize_benchmark({"p1": [True] * 4}, k=8)
