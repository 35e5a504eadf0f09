"""The embedded task: multi-digit addition with a short digit-by-digit worked solution and a boxed answer.

Chosen for headroom on a tiny model: each step of the worked solution ("7+5=12, carry 1.") is a small lookup that
a 2-layer model learns from a short supervised warm-start, but chaining them is where it still fails often —
so sampled groups have mixed outcomes (a useful GRPO signal) and RL has room to raise greedy accuracy.
Difficulty knobs: ``digits`` per operand and ``operands`` per problem.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class TaskConfig:
    """Sizes and difficulty of the arithmetic task; ``seed`` fixes the problems and the split."""

    digits: int = 2
    operands: int = 2
    train_size: int = 5000
    test_size: int = 400
    seed: int = 0

    def __post_init__(self) -> None:
        if self.digits < 1 or self.operands < 2:
            raise ValueError(f"need digits >= 1 and operands >= 2, got digits={self.digits}, operands={self.operands}")
        if self.train_size < 1 or self.test_size < 1:
            raise ValueError(f"train_size and test_size must be >= 1, got {self.train_size}, {self.test_size}")
        space = (10**self.digits) ** self.operands
        if self.train_size + self.test_size > 0.9 * space:  # rejection sampling needs spare problems
            raise ValueError(
                f"train_size + test_size = {self.train_size + self.test_size} is too large for {space} distinct "
                f"problems with digits={self.digits}, operands={self.operands}"
            )


def worked_solution(terms: list[int]) -> str:
    """Column addition from the units digit up: "7+5=12, carry 1. 4+2+1=7. \\boxed{72}"."""
    width = max(len(str(t)) for t in terms)
    carry, steps = 0, []
    for position in range(width):
        column = [t // 10**position % 10 for t in terms]
        total = sum(column) + carry
        parts = "+".join(map(str, column)) + (f"+{carry}" if carry else "")
        carry = total // 10
        steps.append(f"{parts}={total}" + (f", carry {carry}." if carry else "."))
    return " ".join(steps) + f" \\boxed{{{sum(terms)}}}"


def make_row(terms: list[int], index: int, split: str) -> dict[str, str]:
    return {
        "id": f"{split}-{index}",
        "problem": " + ".join(map(str, terms)) + " = ?",
        "answer": str(sum(terms)),
        "solution": worked_solution(terms),
    }


def make_splits(cfg: TaskConfig) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Disjoint train and held-out test problems (no problem text appears in both)."""
    rng = random.Random(cfg.seed)
    seen: set[tuple[int, ...]] = set()
    rows: list[list[int]] = []
    while len(rows) < cfg.train_size + cfg.test_size:
        terms = [rng.randrange(10**cfg.digits) for _ in range(cfg.operands)]
        if tuple(terms) not in seen:
            seen.add(tuple(terms))
            rows.append(terms)
    test = [make_row(t, i, "test") for i, t in enumerate(rows[: cfg.test_size])]
    train = [make_row(t, i, "train") for i, t in enumerate(rows[cfg.test_size :])]
    return train, test
