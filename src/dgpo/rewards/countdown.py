"""The Countdown reward: 1.0 exactly when the last ``<answer>…</answer>`` reaches the target with every given number
used once, in exact rational arithmetic; else 0.0.

The task (TinyZero's Countdown, "Countdown-Tasks-3to4"): reach ``target`` from ``numbers`` with ``+ - * /`` and
parentheses. TinyZero scores the answer with Python's ``eval`` behind a character filter and a 1e-5 tolerance, and
gives 0.1 for a well-formed wrong answer. This reward differs on purpose (docs/rewards.md):

- its own parser (an iterative shunting-yard, so no recursion limit and linear time on any input) and exact
  :class:`fractions.Fraction` arithmetic — ``eval`` on model text is a door we keep shut, and a float tolerance
  lets ``(1/3)*3``-style rounding decide a reward;
- no format credit: the reward is the held-out accuracy, so a training curve and an evaluation mean one thing;
- the written numbers must be the given ones as written: ``07`` for 7 is a near-miss, not a match.

Accepted grammar, after stripping the answer's outer whitespace: ASCII digits, ``+ - * /``, ``(`` ``)`` and
spaces; binary operators only (no unary minus or plus); no empty parentheses; ``*`` and ``/`` bind tighter than
``+`` and ``-``, all left-associative. Anything else, and a division by zero anywhere, scores 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from dgpo.rewards.extract import completion_text

ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
DIGITS = frozenset("0123456789")
OPERATORS = {"+": 1, "-": 1, "*": 2, "/": 2}  # operator → precedence
#: An honest answer with 6 numbers is under 40 characters; longer answers score 0 before any parsing.
MAX_EXPRESSION_CHARS = 1000


def last_answer(text: str) -> str | None:
    """The text inside the last complete ``<answer>…</answer>`` pair (the last closing tag and the opening tag
    nearest before it), or None. Two ``rfind`` scans: linear on any input."""
    end = text.rfind(ANSWER_CLOSE)
    if end < 0:
        return None
    start = text.rfind(ANSWER_OPEN, 0, end)
    return None if start < 0 else text[start + len(ANSWER_OPEN) : end]


def tokenize(expression: str) -> list[str] | None:
    """Numbers (runs of ASCII digits) and single-character operators/parentheses; None on any other character."""
    tokens, i = [], 0
    while i < len(expression):
        char = expression[i]
        if char == " ":
            i += 1
        elif char in DIGITS:
            j = i
            while j < len(expression) and expression[j] in DIGITS:
                j += 1
            tokens.append(expression[i:j])
            i = j
        elif char in OPERATORS or char in "()":
            tokens.append(char)
            i += 1
        else:
            return None
    return tokens


def to_postfix(tokens: list[str]) -> list[str] | None:
    """Shunting-yard with a two-state check of the grammar (expect an operand / expect an operator); None when the
    tokens are not one well-formed expression. Iterative: nesting depth costs memory, never recursion."""
    output: list[str] = []
    stack: list[str] = []
    expect_operand = True
    for token in tokens:
        if expect_operand:
            if token == "(":
                stack.append(token)
            elif token[0] in DIGITS:
                output.append(token)
                expect_operand = False
            else:  # an operator where an operand belongs (unary minus, "()" or a leading "*")
                return None
        elif token in OPERATORS:
            while stack and stack[-1] in OPERATORS and OPERATORS[stack[-1]] >= OPERATORS[token]:
                output.append(stack.pop())
            stack.append(token)
            expect_operand = True
        elif token == ")":
            while stack and stack[-1] != "(":
                output.append(stack.pop())
            if not stack:
                return None  # unbalanced ")"
            stack.pop()
        else:  # a number or "(" right after an operand
            return None
    if expect_operand or "(" in stack:
        return None
    return output + stack[::-1]


def evaluate_postfix(postfix: list[str]) -> Fraction | None:
    """The exact value, or None on a division by zero."""
    values: list[Fraction] = []
    for token in postfix:
        if token in OPERATORS:
            right, left = values.pop(), values.pop()
            if token == "+":
                values.append(left + right)
            elif token == "-":
                values.append(left - right)
            elif token == "*":
                values.append(left * right)
            elif right == 0:
                return None
            else:
                values.append(left / right)
        else:
            values.append(Fraction(int(token)))
    return values[0]


def check_problem(numbers: Sequence[int], target: int) -> None:
    """A problem (dataset columns, not model text) must be non-negative integers: raise naming the field."""
    if isinstance(numbers, str | bytes) or not isinstance(numbers, Sequence) or not numbers:
        raise ValueError(f"numbers must be a non-empty list of integers, got {numbers!r}")
    bad = [n for n in numbers if isinstance(n, bool) or not isinstance(n, int) or n < 0]
    if bad:
        raise ValueError(f"numbers must be integers >= 0, got {list(numbers)!r}")
    if isinstance(target, bool) or not isinstance(target, int):
        raise ValueError(f"target must be an integer, got {target!r}")


def score_expression(expression: str, numbers: Sequence[int], target: int) -> bool:
    """Whether ``expression`` (the answer's text) reaches ``target`` with every number of ``numbers`` once."""
    expression = expression.strip()
    if len(expression) > MAX_EXPRESSION_CHARS:
        return False
    tokens = tokenize(expression)
    if tokens is None:
        return False
    written = [t for t in tokens if t[0] in DIGITS]
    # Exactly the given numbers, as written ("07" is not 7): also bounds the arithmetic below to len(numbers) terms.
    if Counter(written) != Counter(str(n) for n in numbers):
        return False
    postfix = to_postfix(tokens)
    if postfix is None:
        return False
    value = evaluate_postfix(postfix)
    return value is not None and value == target


def countdown_reward(completion: str, numbers: list[int], target: int) -> float:
    """1.0 when the last ``<answer>…</answer>`` of ``completion`` is an expression over ``numbers`` (each once)
    equal to ``target``, else 0.0.

    Never raises for any completion (a non-string scores 0); raises ``ValueError`` for a malformed problem.
    """
    check_problem(numbers, target)
    if not isinstance(completion, str):
        return 0.0
    answer = last_answer(completion)
    return 1.0 if answer is not None and score_expression(answer, numbers, target) else 0.0


class CountdownReward:
    """A TRL reward function over the dataset's ``numbers`` and ``target`` columns:
    ``reward(completions, numbers, target, **kwargs) -> list[float]`` (conversational completions accepted).

    The counterpart of :class:`dgpo.rewards.MathReward` for ``--task countdown``. Pure Python and linear in the
    completion, so it needs no worker processes; ``close`` exists for the same life cycle.
    """

    __name__ = "countdown_reward"  # TRL names each reward function's logged mean after ``__name__``

    def __call__(
        self, completions: Sequence[Any], numbers: Sequence[Sequence[int]], target: Sequence[int], **kwargs: Any
    ) -> list[float]:
        if not len(completions) == len(numbers) == len(target):
            raise ValueError(f"got {len(completions)} completions, {len(numbers)} numbers and {len(target)} targets")
        return [
            countdown_reward(completion_text(c), list(n), t)
            for c, n, t in zip(completions, numbers, target, strict=True)
        ]

    def score_rows(self, completions: Sequence[Any], rows: Sequence[dict]) -> list[float]:
        """Rewards of completions against problem rows holding ``numbers`` and ``target`` (held-out evaluation)."""
        return self(completions, [r["numbers"] for r in rows], [r["target"] for r in rows])

    def close(self) -> None:
        """Nothing to stop (no worker processes)."""
