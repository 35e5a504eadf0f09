"""Numbers written in another base (``101_2``, ``12_{3}``, ``\\text{A3}_{16}``): equal only when their values are.

math-verify reads ``101_2`` as 101 — it drops the subscript — so on its own it would accept ``101`` or ``101_3``
against a gold ``101_2``. No library reads base subscripts in LaTeX answers, so this small reader does: a whole
answer of base-b digits (``0-9``, then ``A-Z`` for bases above 10) followed by ``_b`` or ``_{b}`` with b in 2..36.
When either side is such a number the pair is decided here, exactly, by value: ``101_2`` equals ``5``,
``5_{10}`` and ``101_{2}``, and nothing else (a side that is neither a based number nor a plain integer, decimal
or fraction is a different answer).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction

_BASED = re.compile(
    r"^\(?(?P<digits>[0-9A-Z]+)\)?_(?:\{\s*\(?(?P<braced>\d+)\)?\s*\}|(?P<bare>\d))$"
)  # "(101)_2" and "1011_{(2)}" too; the digits already stripped of \text{} by the caller's normalisation
_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def based_value(text: str) -> int | None:
    """The value of ``digits_base`` (the whole, normalised answer), or None when it is not such a number: no
    subscript, a base outside 2..36, or a digit not below the base (so letters need a base above 10; a lowercase
    ``a_2`` is a name and never matches)."""
    match = _BASED.match(text)
    if not match:
        return None
    base = int(match["braced"] or match["bare"])
    digits = match["digits"]
    if not 2 <= base <= 36 or any(_DIGITS.index(d) >= base for d in digits):
        return None
    return int(digits, base)


def compare_based(gold: str, pred: str, number: Callable[[str], Fraction | None]) -> bool | None:
    """True/False when either normalised side is a based number (compared by value; ``number`` reads a plain one),
    None when neither is (the usual rules decide)."""
    gold_based, pred_based = based_value(gold), based_value(pred)
    if gold_based is None and pred_based is None:
        return None
    gold_value = gold_based if gold_based is not None else number(gold)
    pred_value = pred_based if pred_based is not None else number(pred)
    return gold_value is not None and pred_value is not None and gold_value == pred_value
