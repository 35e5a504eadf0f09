"""The embedded tasks: ``addition`` (the default) and ``countdown`` (:mod:`dgpo.train.countdown`).

Addition: multi-digit addition with a short digit-by-digit worked solution and a boxed answer.

Chosen for headroom on a tiny model: each step of the worked solution ("7+5=12, carry 1.") is a small lookup that
a 2-layer model learns from a short supervised warm-start, but chaining them is where it still fails often —
so sampled groups have mixed outcomes (a useful GRPO signal) and RL has room to raise greedy accuracy.
Difficulty knobs: ``digits`` per operand and ``operands`` per problem.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

#: The embedded tasks (``task.name``; ``dgpo train --task``).
TASKS = ("addition", "countdown")


@dataclass(frozen=True)
class TaskConfig:
    """Which embedded task, its sizes and difficulty; ``seed`` fixes the problems and the split.

    ``digits`` and ``operands`` shape addition; ``numbers`` (given numbers per problem, each in 1..``max_number``),
    ``min_target``..``max_target`` and ``min_solutions`` (move sequences that reach the target) shape countdown.
    """

    name: str = "addition"
    digits: int = 2
    operands: int = 2
    numbers: int = 3
    max_number: int = 20
    min_target: int = 10
    max_target: int = 100
    min_solutions: int = 2
    train_size: int = 5000
    test_size: int = 400
    seed: int = 0

    def __post_init__(self) -> None:
        if self.name not in TASKS:
            raise ValueError(f"unknown task.name {self.name!r}; valid tasks: {', '.join(TASKS)}")
        if self.train_size < 1 or self.test_size < 1:
            raise ValueError(f"train_size and test_size must be >= 1, got {self.train_size}, {self.test_size}")
        if self.name == "countdown":
            self._check_countdown()
            return
        if self.digits < 1 or self.operands < 2:
            raise ValueError(f"need digits >= 1 and operands >= 2, got digits={self.digits}, operands={self.operands}")
        space = (10**self.digits) ** self.operands
        if self.train_size + self.test_size > 0.9 * space:  # rejection sampling needs spare problems
            raise ValueError(
                f"train_size + test_size = {self.train_size + self.test_size} is too large for {space} distinct "
                f"problems with digits={self.digits}, operands={self.operands}"
            )

    def _check_countdown(self) -> None:
        # 5 numbers already mean ~10^5 move sequences per drawn problem to count solutions: keep generation quick.
        if not 2 <= self.numbers <= 4:
            raise ValueError(f"task.numbers must be in 2..4, got {self.numbers}")
        if not 1 <= self.max_number <= 1000:
            raise ValueError(f"task.max_number must be in 1..1000, got {self.max_number}")
        if not 1 <= self.min_target <= self.max_target:
            raise ValueError(f"need 1 <= task.min_target <= task.max_target, got {self.min_target}..{self.max_target}")
        if self.min_solutions < 1:
            raise ValueError(f"task.min_solutions must be >= 1, got {self.min_solutions}")


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


def make_splits(cfg: TaskConfig) -> tuple[list[dict], list[dict]]:
    """Disjoint train and held-out test problems of the configured task (no problem appears in both)."""
    if cfg.name == "countdown":
        from dgpo.train.countdown import make_countdown_splits

        return make_countdown_splits(
            cfg.numbers, cfg.max_number, cfg.min_target, cfg.max_target, cfg.min_solutions,
            cfg.train_size, cfg.test_size, cfg.seed,
        )  # fmt: skip
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
