"""The Countdown reward: exact in both directions, and unbreakable by what a model writes."""

from __future__ import annotations

import random
import sys
from fractions import Fraction

import pytest

from dgpo.rewards import CountdownReward, countdown_reward
from dgpo.rewards.countdown import MAX_EXPRESSION_CHARS, last_answer, to_postfix, tokenize


def answer(text: str) -> str:
    return f"<think>some search</think><answer>{text}</answer>"


NUMBERS, TARGET = [4, 7, 3], 33

# (answer text, expected reward) for numbers 4 7 3 and target 33 unless the row says otherwise.
CASES = [
    ("(4+7)*3", 1.0),
    ("3*(7+4)", 1.0),  # any order of the numbers
    ("  ( 4 + 7 ) * 3  ", 1.0),  # spaces anywhere, outer whitespace stripped
    ("\n(4+7)*3\n", 1.0),  # a newline around the expression (strip), not inside it
    ("(((4+7)))*3", 1.0),  # redundant parentheses
    ("4+7*3", 0.0),  # 25: precedence is honoured
    ("(4+7)*3=33", 0.0),  # "=" is not part of an expression
    ("33", 0.0),  # the target alone
    ("11*3", 0.0),  # 11 is not a given number
    ("(4+7)*3+0", 0.0),  # 0 is not a given number
    ("(4+4+7)*3", 0.0),  # 4 used twice
    ("(4+07)*3", 0.0),  # "07" is not the number 7 as given
    ("(4+7)*03", 0.0),
    ("(4+7.0)*3", 0.0),  # decimals
    ("-(4+7)*3", 0.0),  # unary minus
    ("(4+7)*-3", 0.0),
    ("+(4+7)*3", 0.0),  # unary plus
    ("(4+7)**3", 0.0),  # Python's power
    ("(4+7)^3", 0.0),
    ("(4+7)(3)", 0.0),  # implicit multiplication
    ("(4+7)3", 0.0),
    ("4 7 3", 0.0),  # numbers without operators
    ("(4+7)*3+", 0.0),  # dangling operator
    ("*(4+7)*3", 0.0),
    ("(4+7*3", 0.0),  # unbalanced
    ("4+7)*3", 0.0),
    (")4+7(*3", 0.0),
    ("()(4+7)*3", 0.0),  # empty parentheses
    ("(4+7)*3 ()", 0.0),
    ("(4+\t7)*3", 0.0),  # only spaces inside
    ("(4+\n7)*3", 0.0),
    ("(４+7)*3", 0.0),  # fullwidth digit
    ("(٤+7)*3", 0.0),  # Arabic-Indic digit
    ("(4+7)×3", 0.0),  # the multiplication sign
    ("(4+7)÷3", 0.0),
    ("__import__('os')", 0.0),  # model text is never Python
    ("", 0.0),
    ("   ", 0.0),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_answer_table(text, expected):
    assert countdown_reward(answer(text), NUMBERS, TARGET) == expected


@pytest.mark.parametrize(
    ("text", "numbers", "target", "expected"),
    [
        ("6/(3/4)", [3, 4, 6], 8, 1.0),  # exact rationals through a fractional intermediate
        ("100000/100001", [100000, 100001], 1, 0.0),  # within TinyZero's 1e-5 tolerance, but not equal
        ("(1/3)*3", [1, 3, 3], 1, 1.0),
        ("3/(5-5)", [5, 5, 3], 3, 0.0),  # division by zero anywhere scores 0
        ("(5-5)/3", [5, 5, 3], 0, 1.0),  # ... but dividing zero is fine
        ("8/4/2", [8, 4, 2], 1, 1.0),  # left-associative: (8/4)/2
        ("8/4/2", [8, 4, 2], 4, 0.0),  # not 8/(4/2)
        ("9-4-2", [9, 4, 2], 3, 1.0),
        ("9-4-2", [9, 4, 2], 7, 0.0),
        ("4-7+3", [4, 7, 3], 0, 1.0),  # a negative intermediate is allowed (exact arithmetic)
        ("(4+7)*3", [4, 7, 3, 1], 33, 0.0),  # every given number must be used
        ("(4+7)*3", [4, 7], 33, 0.0),
    ],
)
def test_exact_arithmetic(text, numbers, target, expected):
    assert countdown_reward(answer(text), numbers, target) == expected


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("no tags at all: (4+7)*3", 0.0),
        ("<answer>(4+7)*3", 0.0),  # never closed
        ("(4+7)*3</answer>", 0.0),  # never opened
        ("<answer>4+7+3</answer> then <answer>(4+7)*3</answer>", 1.0),  # the last answer counts
        ("<answer>(4+7)*3</answer> then <answer>4+7+3</answer>", 0.0),
        ("<answer>(4+7)*3</answer> then <answer>unclosed", 1.0),  # the last *complete* pair
        ("<answer><answer>(4+7)*3</answer>", 1.0),  # the opening tag nearest the last closing one
        ("<ANSWER>(4+7)*3</ANSWER>", 0.0),  # tags are case-sensitive
        ("<think>(4+7)*3</think>", 0.0),
        ("x" * 100_000 + "<answer>(4+7)*3</answer>", 1.0),  # a long completion is only scanned
    ],
)
def test_answer_extraction(completion, expected):
    assert countdown_reward(completion, NUMBERS, TARGET) == expected


@pytest.mark.parametrize("completion", [None, 33, 33.0, b"<answer>(4+7)*3</answer>", ["(4+7)*3"], {"a": 1}])
def test_non_string_completions_score_zero(completion):
    assert countdown_reward(completion, NUMBERS, TARGET) == 0.0


def test_deep_parentheses_and_huge_answers_neither_recurse_nor_hang():
    deep = "(" * 50_000 + "4+7" + ")" * 50_000 + "*3"
    # Over the length cap: rejected before parsing ...
    assert len(deep) > MAX_EXPRESSION_CHARS
    assert countdown_reward(answer(deep), NUMBERS, TARGET) == 0.0
    assert countdown_reward(answer("(" * 100_000), NUMBERS, TARGET) == 0.0
    assert countdown_reward(answer("4+" * 50_000 + "7"), NUMBERS, TARGET) == 0.0
    # ... and the parser itself is iterative: 50,000 levels of nesting parse without a RecursionError.
    assert sys.getrecursionlimit() < 50_000
    assert to_postfix(tokenize(deep)) == ["4", "7", "+", "3", "*"]
    shallow = "(" * 400 + "4+7" + ")" * 400 + "*3"
    assert len(shallow) <= MAX_EXPRESSION_CHARS
    assert countdown_reward(answer(shallow), NUMBERS, TARGET) == 1.0


@pytest.mark.parametrize(
    ("numbers", "target", "field"),
    [
        ([], 5, "numbers"),
        ("473", 5, "numbers"),
        (None, 5, "numbers"),
        ([4, -7], 5, "numbers"),
        ([4, 7.0], 5, "numbers"),
        ([4, True], 5, "numbers"),
        ([4, 7], "11", "target"),
        ([4, 7], 11.0, "target"),
        ([4, 7], None, "target"),
    ],
)
def test_malformed_problems_raise_naming_the_field(numbers, target, field):
    with pytest.raises(ValueError, match=field):
        countdown_reward(answer("4+7"), numbers, target)


def test_last_answer():
    assert last_answer("<answer>1</answer><answer>2</answer>") == "2"
    assert last_answer("<answer>1") is None
    assert last_answer("") is None


def random_expression(numbers: list[int], rng: random.Random) -> tuple[str, Fraction | None]:
    """A random binary tree over ``numbers`` (each once), rendered with random spaces and every subexpression in
    parentheses, and its value computed on the tree (None on a division by zero): an evaluation independent of the
    reward's parser."""
    items: list[tuple[str, Fraction | None]] = [(str(n), Fraction(n)) for n in numbers]
    while len(items) > 1:
        (left, a), (right, b) = items.pop(rng.randrange(len(items))), items.pop(rng.randrange(len(items)))
        op = rng.choice("+-*/")
        space = " " * rng.randint(0, 1)
        text = f"({left}{space}{op}{space}{right})"
        if a is None or b is None or (op == "/" and b == 0):
            value = None
        else:
            value = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else None}[op]
        items.append((text, value))
    return items[0]


def test_agrees_with_an_independent_evaluation_on_random_expressions():
    rng = random.Random(0)
    checked = 0
    for _ in range(3000):
        numbers = [rng.randint(0, 30) for _ in range(rng.randint(1, 5))]
        text, value = random_expression(numbers, rng)
        if value is None:
            assert countdown_reward(answer(text), numbers, 7) == 0.0
            continue
        if value.denominator == 1:
            checked += 1
            assert countdown_reward(answer(text), numbers, int(value)) == 1.0, text
        assert countdown_reward(answer(text), numbers, int(value) + 1) == 0.0, text
    assert checked > 1500


def test_trl_reward_function_reads_the_dataset_columns():
    reward = CountdownReward()
    completions = [
        [{"role": "assistant", "content": answer("(4+7)*3")}],
        answer("4+7+3"),
        [{"role": "assistant", "content": None}],
        None,
    ]
    numbers = [[4, 7, 3], [4, 7, 3], [4, 7, 3], [4, 7, 3]]
    assert reward(completions=completions, numbers=numbers, target=[33, 14, 33, 33], prompts=["p"] * 4) == [
        1.0,
        1.0,
        0.0,
        0.0,
    ]
    assert reward.__name__ == "countdown_reward"
    with pytest.raises(ValueError, match="completions"):
        reward(completions=completions, numbers=numbers[:2], target=[33] * 4)
    rows = [{"numbers": [4, 7, 3], "target": 33}, {"numbers": [4, 7, 3], "target": 34}]
    assert reward.score_rows([answer("(4+7)*3"), answer("(4+7)*3")], rows) == [1.0, 0.0]
