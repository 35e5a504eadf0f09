"""Cheap answer equivalence, tried before math-verify: LaTeX-insensitive string equality and exact numbers.

It only ever *accepts* on its own, except that two plain integers that differ are a decisive "no"; everything
else it cannot decide goes to math-verify (in a worker process). The normalisation rules are the usual
MATH-style ones (spacing, ``\\left``/``\\right``, ``\\dfrac``, ``\\frac12``, units, degrees, percent, ``x =``).
"""

from __future__ import annotations

import re
from fractions import Fraction

_REPLACEMENTS = (
    ("\\dfrac", "\\frac"),
    ("\\tfrac", "\\frac"),
    ("\\left", ""),
    ("\\right", ""),
    ("\\!", ""),
    ("\\,", ""),
    ("\\;", ""),
    ("\\:", ""),
    ("\\qquad", ""),
    ("\\quad", ""),
    ("^{\\circ}", ""),
    ("^\\circ", ""),
    ("\\circ", ""),
    ("\\degree", ""),
    ("\\%", ""),
    ("%", ""),
    ("\\$", ""),
    ("$", ""),
    ("~", ""),
)
_TRAILING_UNIT = re.compile(r"(?<=\S)\s*\\(?:text|mbox|mathrm)\{\s*[a-zA-Z][a-zA-Z\s.^0-9]*\}$")
_TEXT = re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf|mbox)\{([^{}]*)\}")
_WHITESPACE = re.compile(r"\s+")
_FRAC_SHORT = re.compile(r"\\frac(\d)(\d)")
_FRAC_HALF_SHORT = re.compile(r"\\frac(\d)\{")
_FRAC_HALF_SHORT_DEN = re.compile(r"\\frac\{([^{}]*)\}(\d)")
_SQRT_SHORT = re.compile(r"\\sqrt(\d+)")
_VARIABLE_PREFIX = re.compile(r"^[a-zA-Z]{1,3}=(?!=)")

_INTEGER = re.compile(r"^[+-]?\d+$")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+$")
_DECIMAL = re.compile(r"^[+-]?(?:\d+\.\d*|\.\d+)$")
_FRACTION = re.compile(r"^(?P<sign>[+-]?)\\frac\{(?P<num>[+-]?\d+)\}\{(?P<den>\d+)\}$")
_SLASH = re.compile(r"^(?P<num>[+-]?\d+)/(?P<den>\d+)$")


def normalize(answer: str) -> str:
    """A canonical string for LaTeX answers that differ only in presentation."""
    text = answer.strip().rstrip(".")
    text = _TRAILING_UNIT.sub("", text)
    for old, new in _REPLACEMENTS:
        text = text.replace(old, new)
    text = _TEXT.sub(r"\1", text)
    text = _WHITESPACE.sub("", text)
    text = _FRAC_SHORT.sub(r"\\frac{\1}{\2}", text)
    text = _FRAC_HALF_SHORT.sub(r"\\frac{\1}{", text)
    text = _FRAC_HALF_SHORT_DEN.sub(r"\\frac{\1}{\2}", text)
    text = _SQRT_SHORT.sub(r"\\sqrt{\1}", text)
    if text.count("=") == 1:
        text = _VARIABLE_PREFIX.sub("", text)
    text = text.rstrip(".")
    while len(text) > 2 and text[0] == "{" and text[-1] == "}" and _outer_group(text):
        text = text[1:-1]
    return text


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


def fast_equal(gold: str, pred: str) -> bool | None:
    """True/False when cheap rules decide, None when math-verify must."""
    gold_n, pred_n = normalize(gold), normalize(pred)
    if gold_n == pred_n and gold_n:
        return True
    gold_v, pred_v = to_number(gold_n), to_number(pred_n)
    if gold_v is None or pred_v is None:
        return None
    if gold_v == pred_v:
        return True
    # Two integers that differ are certainly different; decimals and fractions may still agree after
    # math-verify's rounding, so those go on to it.
    if gold_v.denominator == 1 and pred_v.denominator == 1 and "." not in gold_n + pred_n:
        return False
    return None
