"""Avg@k and the unbiased Pass@k estimator (Chen et al. 2021, arXiv 2107.03374, eq. 1)."""

from __future__ import annotations

from collections.abc import Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased ``pass@k = 1 − C(n−c, k)/C(n, k)`` for n samples of which c are correct.

    Evaluated as ``1 − Π_{i=n−c+1}^{n} (1 − k/i)``, which never forms the huge binomials.
    """
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, n={n}], got {k}")
    if n - c < k:  # every k-subset contains a correct sample
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def k_values(k: int) -> list[int]:
    """1, 2, 4, … up to k, and k itself."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    values = [1 << i for i in range(k.bit_length()) if 1 << i <= k]
    return values if values[-1] == k else [*values, k]


def summarize_benchmark(correct_by_problem: dict[str, Sequence[bool]], k: int) -> dict:
    """Avg@k and Pass@k' (k' in :func:`k_values`) over problems, from the first k samples of each.

    Raises:
        ValueError: when a problem has fewer than k samples, or there are no problems.
    """
    if not correct_by_problem:
        raise ValueError("no problems to summarize")
    short = {pid: len(v) for pid, v in correct_by_problem.items() if len(v) < k}
    if short:
        pid, have = next(iter(short.items()))
        raise ValueError(
            f"k={k} is larger than the samples present: {len(short)} problem(s) have fewer (e.g. {pid} has {have})"
        )
    firsts = {pid: list(v)[:k] for pid, v in correct_by_problem.items()}
    problems = len(firsts)
    avg = sum(sum(v) / k for v in firsts.values()) / problems
    passes = {kk: sum(pass_at_k(k, sum(v), kk) for v in firsts.values()) / problems for kk in k_values(k)}
    return {"problems": problems, "k": k, "avg": avg, "pass": passes}
