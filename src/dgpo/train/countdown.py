"""The Countdown testbed: reach a target from a few given numbers with + − × ÷, each number used once.

The anchor is TinyZero's Countdown (3–4 numbers), the task on which R1-Zero-style reasoning was first reproduced
with a small model. Here it is sized for a tiny model on a CPU, and its supervised warm start teaches *search*, not
answers: every training row's ``solution`` is the trace of a solver that tries first moves in a random order,
writes each attempt with its arithmetic, says ``no.`` at a dead end, and stops at the first success — then writes
the answer in the R1 format::

    <think>7-4=3, 3*3=9 no. 4*3=12, 12+7=19 no. 4+7=11, 11*3=33 yes.</think><answer>(4+7)*3</answer>

So a sampled completion is a search whose length depends on luck and skill; the reward
(:func:`dgpo.rewards.countdown_reward`) checks the answer alone, so a shorter or better-ordered search — one that
ends before the completion budget — is what RL can buy. The solver keeps every intermediate value a positive
integer (the game's usual rule); the reward accepts any expression that is exactly right.

Problems: ``count`` values drawn from 1..``max_number``; the target is drawn among the integers in
[``min_target``, ``max_target``] that at least ``min_solutions`` distinct move sequences reach, so every problem
has several valid answers. Train and held-out problems are disjoint as (sorted numbers, target).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

#: The solver's operators, in the order they are enumerated (the trace shuffles them).
STEP_OPERATORS = ("+", "-", "*", "/")


@dataclass(frozen=True)
class Term:
    """A value and the expression that made it (fully parenthesised below the top level)."""

    value: int
    expression: str


@dataclass(frozen=True)
class Step:
    """One move: combine ``left`` and ``right`` with ``op`` (rest = the numbers not touched)."""

    left: Term
    op: str
    right: Term
    result: Term
    rest: tuple[Term, ...]

    @property
    def text(self) -> str:
        return f"{self.left.value}{self.op}{self.right.value}={self.result.value}"


def _wrap(term: Term) -> str:
    return term.expression if term.expression.isdigit() else f"({term.expression})"


def combine(left: Term, op: str, right: Term) -> Term | None:
    """``left op right`` when it is a positive integer (the game's rule for intermediate values), else None."""
    a, b = left.value, right.value
    if op == "+":
        value = a + b
    elif op == "-":
        value = a - b
    elif op == "*":
        value = a * b
    else:
        value = a // b if b and a % b == 0 else 0
    return Term(value, f"{_wrap(left)}{op}{_wrap(right)}") if value > 0 else None


def steps(terms: tuple[Term, ...]) -> list[Step]:
    """Every legal move from ``terms``: each ordered pair (i, j) with each operator; ``+`` and ``*`` only once per
    unordered pair (they commute)."""
    moves = []
    for i, left in enumerate(terms):
        for j, right in enumerate(terms):
            if i == j:
                continue
            rest = tuple(t for k, t in enumerate(terms) if k not in (i, j))
            for op in STEP_OPERATORS:
                if op in "+*" and j < i:
                    continue
                result = combine(left, op, right)
                if result is not None:
                    moves.append(Step(left, op, right, result, rest))
    return moves


def leaves(terms: tuple[Term, ...]) -> Iterator[Term]:
    """Every final value reachable by using all the numbers (one per sequence of moves)."""
    if len(terms) == 1:
        yield terms[0]
        return
    for step in steps(terms):
        yield from leaves((step.result, *step.rest))


def as_terms(numbers: list[int]) -> tuple[Term, ...]:
    return tuple(Term(n, str(n)) for n in numbers)


def solution_counts(numbers: list[int]) -> Counter[int]:
    """Target → how many distinct move sequences reach it."""
    return Counter(term.value for term in leaves(as_terms(numbers)))


def search_trace(numbers: list[int], target: int, rng: random.Random) -> tuple[str, str] | None:
    """(the ``<think>`` text of a random-order depth-first search, the answer expression) or None if unreachable.

    At each depth the legal moves are shuffled and tried in that order. The last move (two values left) is not
    guessed: the solver writes the final move whose result is closest to the target (ties: the shuffled order)
    and ends the attempt in ``yes.`` or ``no.``; a deeper branch with no success left ends in ``back.``. So the
    trace is a real search over the earlier moves — its length is the luck of the order — and the final move is
    a small skill of its own::

        7-4=3, 3*3=9 no. 4*3=12, 12+7=19 no. 4+7=11, 11*3=33 yes.
    """
    parts: list[str] = []

    def search(terms: tuple[Term, ...]) -> str | None:
        moves = steps(terms)
        rng.shuffle(moves)
        if len(terms) == 2:
            if not moves:
                parts.append("no.")
                return None
            best = min(moves, key=lambda move: abs(move.result.value - target))
            hit = best.result.value == target
            parts.append(f"{best.text} {'yes' if hit else 'no'}.")
            return best.result.expression if hit else None
        for move in moves:
            parts.append(f"{move.text},")
            found = search((move.result, *move.rest))
            if found is not None:
                return found
            if len(terms) > 3:
                parts.append("back.")
        return None

    answer = search(as_terms(numbers))
    return None if answer is None else (" ".join(parts), answer)


def completion_text(trace: str, answer: str) -> str:
    """The R1 format the reward reads: ``<think>…</think><answer>…</answer>``."""
    return f"<think>{trace}</think><answer>{answer}</answer>"


def problem_text(numbers: list[int], target: int) -> str:
    """The prompt: short, because the tiny model reads it at every step of every sample."""
    return f"Use {' '.join(map(str, numbers))} to make {target}."


def make_problem(rng: random.Random, count: int, max_number: int, min_target: int, max_target: int, min_solutions: int):
    """(numbers, target) with at least ``min_solutions`` move sequences reaching the target, or None."""
    numbers = [rng.randint(1, max_number) for _ in range(count)]
    counts = solution_counts(numbers)
    targets = sorted(t for t, n in counts.items() if min_target <= t <= max_target and n >= min_solutions)
    if not targets:
        return None
    return numbers, rng.choice(targets)


def make_row(numbers: list[int], target: int, index: int, split: str, rng: random.Random) -> dict:
    found = search_trace(numbers, target, rng)
    assert found is not None, "make_problem only picks reachable targets"
    trace, answer = found
    return {
        "id": f"{split}-{index}",
        "problem": problem_text(numbers, target),
        "answer": answer,  # one valid answer (the reward accepts any)
        "solution": completion_text(trace, answer),
        "numbers": numbers,
        "target": target,
    }


def make_countdown_splits(
    count: int,
    max_number: int,
    min_target: int,
    max_target: int,
    min_solutions: int,
    train_size: int,
    test_size: int,
    seed: int,
) -> tuple[list[dict], list[dict]]:
    """Disjoint train and held-out problems (no (sorted numbers, target) pair in both), seeded."""
    rng = random.Random(seed)
    seen: set[tuple] = set()
    problems: list[tuple[list[int], int]] = []
    attempts = 0
    while len(problems) < train_size + test_size:
        attempts += 1
        if attempts > 50 * (train_size + test_size) + 1000:
            raise ValueError(
                f"could not draw {train_size + test_size} distinct countdown problems (numbers={count}, "
                f"max_number={max_number}, targets {min_target}..{max_target}, min_solutions={min_solutions}); "
                "widen the ranges or ask for fewer"
            )
        drawn = make_problem(rng, count, max_number, min_target, max_target, min_solutions)
        if drawn is None:
            continue
        key = (tuple(sorted(drawn[0])), drawn[1])
        if key not in seen:
            seen.add(key)
            problems.append(drawn)
    trace_rng = random.Random(seed + 1)
    test = [make_row(n, t, i, "test", trace_rng) for i, (n, t) in enumerate(problems[:test_size])]
    train = [make_row(n, t, i, "train", trace_rng) for i, (n, t) in enumerate(problems[test_size:])]
    return train, test
