"""Cheap answer equivalence, tried before math-verify: presentation-insensitive string equality and exact numbers.

It accepts only what is the same value (the same string after presentation-only rewrites, or two plain numbers
with equal exact values), and rejects only two plain numbers whose exact values differ (the worker, exact too,
would reject them as well). Everything else is None and goes to math-verify in a worker process.

Units are read by :func:`dgpo.rewards.policy.read_answer`, the same function the worker uses, so the fast path
never strips a unit the worker would keep. It drops a unit only when the gold carries it (the gold is trusted:
``5\\text{ cm}`` vs ``5``) or both sides carry the same one; a unit on the prediction alone goes to the worker.
Unsafe rewrites are gone: whitespace between two digits is kept (``1 2`` is not 12), ``\\sqrt23`` is
``\\sqrt{2}3`` as TeX reads it, and ``x =`` is dropped only before a plain number.
"""

from __future__ import annotations

import re
from fractions import Fraction

from dgpo.rewards.bases import compare_based
from dgpo.rewards.policy import brace_arguments, read_answer

_FRACS = re.compile(r"\\[dt]frac(?![a-zA-Z])")
# Spacing commands become a space (so "1\,2" stays two digits apart), \! nothing; "\\" (a row break) is kept whole,
# so its second backslash is never read as the start of "\ " or "\,".
_SPACING = re.compile(r"\\\\|\\[,;: !]|\\q?quad(?![a-zA-Z])|~")
_LEFT_RIGHT = re.compile(r"\\(?:left|right)(?![a-zA-Z])")  # not \leftarrow, \rightarrow
_TEXT = re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf|mbox)\{([^{}]*)\}")
_SPACES = re.compile(r"(?P<command>\\[a-zA-Z]+)\s+(?=[a-zA-Z])|(?P<digits>(?<=\d)\s+(?=\d))|\s+")
_ASSIGNMENT = re.compile(r"^(?P<name>(?![ei]=)[a-zA-Z]{1,3})=(?!=)(?P<value>.*)$")  # not the constants e, i

_INTEGER = re.compile(r"^[+-]?\d+$")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+$")
_DECIMAL = re.compile(r"^[+-]?(?:\d+\.\d*|\.\d+)$")
_FRACTION = re.compile(r"^(?P<sign>[+-]?)\\frac\{(?P<num>[+-]?\d+)\}\{(?P<den>\d+)\}$")
_SLASH = re.compile(r"^(?P<num>[+-]?\d+)/(?P<den>\d+)$")


def _spacing(match: re.Match) -> str:
    command = match.group()
    return command if command == "\\\\" else "" if command == "\\!" else " "


def normalize(answer: str) -> str:
    """A canonical string for LaTeX that differs only in presentation (spacing, ``\\left``, ``\\dfrac``, ``\\frac12``,
    ``\\text{}`` wrappers, outer braces). Nothing here changes a value; units are :func:`read_answer`'s job."""
    return _normalize_braced(brace_arguments(answer.strip().rstrip(".")))


def _normalize_braced(text: str) -> str:
    """:func:`normalize` of text whose one-token arguments are already braced (a :func:`read_answer` core)."""
    text = _LEFT_RIGHT.sub("", text.strip().rstrip("."))
    text = _FRACS.sub(r"\\frac", text)
    text = _SPACING.sub(_spacing, text)
    text = _TEXT.sub(r"\1", text)
    text = _squeeze(text).rstrip(".")
    while len(text) > 2 and text[0] == "{" and text[-1] == "}" and _outer_group(text):
        text = text[1:-1]
    return text


def _squeeze(text: str) -> str:
    """Delete whitespace, but keep one space between two digits and between a command word and a letter."""
    return _SPACES.sub(lambda m: f"{m['command']} " if m["command"] else " " if m["digits"] else "", text)


def _outer_group(text: str) -> bool:
    """True when the first '{' closes at the very end, so the braces wrap the whole string."""
    depth = 0
    for i, char in enumerate(text):
        depth += char == "{"
        depth -= char == "}"
        if depth == 0:
            return i == len(text) - 1
    return False


def to_number(text: str) -> Fraction | None:
    """An exact number for a normalised plain integer, decimal, thousands-grouped integer or simple fraction."""
    if _INTEGER.match(text) or _DECIMAL.match(text):
        return Fraction(text)
    if _THOUSANDS.match(text):
        return Fraction(text.replace(",", ""))
    match = _FRACTION.match(text) or _SLASH.match(text)
    if match and int(match["den"]) != 0:
        value = Fraction(int(match["num"]), int(match["den"]))
        return -value if match.groupdict().get("sign") == "-" else value
    return None


def _value(text: str) -> tuple[str, Fraction | None]:
    """(name, exact number) of a normalised answer: ``3`` → ("", 3), ``x=3`` → ("x", 3); ``x=x+1`` has no number."""
    number = to_number(text)
    if number is None and (assignment := _ASSIGNMENT.match(text)):
        return assignment["name"], to_number(assignment["value"])
    return "", number


def fast_equal(gold: str, pred: str) -> bool | None:
    """True/False when cheap exact rules decide, None when the worker (reading rules + math-verify) must."""
    if gold.strip() == pred.strip() and gold.strip():
        return True  # the very string of the gold answer, whatever it means ("1 000 000" included)
    gold_reading, pred_reading = read_answer(gold), read_answer(pred)
    if gold_reading is None or pred_reading is None:
        return None  # ambiguous ("1 2") or a value word ("5\text{ squared}"): the worker rejects it
    if pred_reading.units and pred_reading.units != gold_reading.units:
        return None  # a unit on the prediction alone, or another unit: the worker decides
    gold_n, pred_n = _normalize_braced(gold_reading.core), _normalize_braced(pred_reading.core)
    if gold_n == pred_n and gold_n:
        return True
    based = compare_based(gold_n, pred_n, to_number)  # math-verify drops a base subscript: decided here, by value
    if based is not None:
        return based
    (gold_name, gold_v), (pred_name, pred_v) = _value(gold_n), _value(pred_n)
    if gold_v is None or pred_v is None or (gold_name and pred_name and gold_name != pred_name):
        return None
    # Two exact numbers: equal values are the same answer; different values are different answers (the worker
    # compares exactly too, see policy.exact_decimals, so it could not accept them either).
    return gold_v == pred_v
