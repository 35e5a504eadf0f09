"""What the math reward accepts: the reading rules shared by the fast path and the math-verify worker.

Why a module of its own: left alone, math-verify is generous in ways that change a value. It drops any trailing
``\\text{...}`` as a unit (``5\\text{ million}`` = 5, ``2\\mathrm{i}`` = 2), and some bare letters too (``5ab`` = 5);
it rounds floats to 6 digits (``0.3333333`` = 1/3); it reads the last right-hand side of any equation (``1=1`` = 1,
``x=2=1`` = 1); it compares a set with an interval (``\\{1,2\\}`` = ``(1,2)``). The rules here decide those cases
on purpose: strings are read first (:func:`read_answer`, :func:`prepare_pair`; pure Python, also used by the fast
path, so the fast path never strips a unit the worker would keep), then math-verify parses what is left without
its unit stripping, every decimal is made exact, equations must be assignments, and ``verify`` compares. The rules
and their examples are in docs/rewards.md, "What is accepted and what is rejected".
"""

from __future__ import annotations

import contextlib
import functools
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

#: Longer answers are not read (the reward already scores answers over 1,000 characters 0 unverified).
MAX_CHARS = 5000
#: ``verify`` options. No float survives :func:`exact_decimals`, so ``float_rounding`` never applies; numeric
#: equality of exact expressions (``(a - b).evalf(n, chop=True) == 0``) runs at 50 digits, not 15, so
#: ``\\sqrt{2}+10^{-20}`` is not ``\\sqrt{2}``. ``strict``: variables matter, a set is not a tuple.
VERIFY_OPTIONS = {"float_rounding": 6, "numeric_precision": 50, "strict": True, "allow_set_relation_comp": False}


@dataclass(frozen=True)
class Reading:
    """An answer split into the LaTeX to compare (``core``) and its unit annotations (canonical, sorted)."""

    core: str
    units: tuple[str, ...] = ()


# -- units ----------------------------------------------------------------------------------------------------
# A word that changes the value is never a unit. Magnitudes are multiplied out; the other words reject the answer.
_MAGNITUDES = {
    "dozen": "12",
    "hundred": "10^{2}",
    "thousand": "10^{3}",
    "k": "10^{3}",
    "million": "10^{6}",
    "billion": "10^{9}",
    "trillion": "10^{12}",
    "quadrillion": "10^{15}",
}
_VALUE_WORDS_TEXT = (
    "e i j pi squared cubed factorial half halves third thirds quarter quarters fourth fourths fifth fifths "
    "sixth sixths seventh sevenths eighth eighths ninth ninths tenth tenths hundredth hundredths thousandth "
    "thousandths millionth millionths times over plus minus negative less fewer below under loss deficit debt "
    "decrease down lower off ago root roots power inverse reciprocal and or not M B K bn mn mil"
)
_VALUE_WORDS = frozenset(_VALUE_WORDS_TEXT.split())
_POWER_WORDS = {"square": 2, "sq": 2, "cubic": 3, "cu": 3}
_UNIT_ALIASES = {
    "m": "meter", "metre": "meter", "cm": "centimeter", "centimetre": "centimeter", "mm": "millimeter",
    "km": "kilometer", "in": "inch", "ft": "foot", "feet": "foot", "yd": "yard", "mi": "mile", "hr": "hour",
    "h": "hour", "min": "minute", "s": "second", "sec": "second", "lb": "pound", "lbs": "pound", "oz": "ounce",
    "kg": "kilogram", "g": "gram", "l": "liter", "litre": "liter", "ml": "milliliter", "gal": "gallon",
    "hrs": "hour", "mins": "minute", "secs": "second", "degree": "deg", "dollar": "$", "usd": "$", "percent": "%",
    "pct": "%", "mph": "mile/hour",
}  # fmt: skip
_FONTS = r"\\(?:text(?:rm|normal|up|bf|it|sf|tt)?|math(?:rm|bf|it|sf)|mbox|operatorname)"
_TEXT_UNIT = re.compile(
    _FONTS + r"\s*\{(?P<word>[^{}]*)\}"
    r"(?P<power>\s*\^\s*(?:\{\s*[23]\s*\}|[23]))?\s*\.?\s*$"
)
_UNIT_WORD = re.compile(r"^(?P<word>[A-Za-z][A-Za-z .\-/]*?)\s*(?P<power>\^\s*(?:\{\s*[23]\s*\}|[23]))?$")
_CONSTANT_FONT = re.compile(_FONTS + r"\s*\{\s*([ei])\s*\}")
_PERCENT = re.compile(r"\\%|%|\\text\s*\{\s*percent\s*\}|(?<![A-Za-z\\])percent\s*$")  # no leading \s*: linear
_DEGREES = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\degree|°")  # not a bare \circ: f \circ g


def _singular(word: str) -> str:
    if len(word) <= 3 or word.endswith("ss"):
        return word
    if (word.endswith("es") and word[-4:-2] in ("ch", "sh")) or word.endswith(("xes", "zes")):
        return word[:-2]
    return word[:-1] if word.endswith("s") else word


def _canonical_token(token: str) -> str:
    token = token if len(token) <= 2 else token.lower()  # "M" (mega) is not "m" (milli), "Miles" is "miles"
    token = _singular(_UNIT_ALIASES.get(token, token))
    return _UNIT_ALIASES.get(token, token)


def _canonical_unit(word: str, power: str | None) -> str:
    """``\\text{ sq. units}`` → ``unit^2``, ``cm^2`` → ``centimeter^2``, ``p.m.`` → ``pm``; short tokens keep case."""
    tokens = [_canonical_token(t) for t in word.split()]
    exponent = int(re.sub(r"\D", "", power)) if power else 1
    if len(tokens) > 1 and tokens[0].lower() in _POWER_WORDS:
        exponent *= _POWER_WORDS[tokens.pop(0).lower()]
    unit = " ".join(tokens)
    return unit if exponent == 1 else f"{unit}^{exponent}"


def _trailing_unit(text: str) -> tuple[str, str | None] | None:
    """Split a trailing ``\\text{unit}`` off ``text``: (rest, canonical unit or None). None: a value word, reject."""
    match = _TEXT_UNIT.search(text)
    if not match or not text[: match.start()].strip():
        return text, None  # no trailing text, or the text is the whole answer (``\text{Thursday}``)
    word = _UNIT_WORD.match(match["word"].strip().rstrip(".").strip())
    if not word:
        return text, None  # ``\text{(A)}``, ``\text{A5}``: not a unit, compared as written
    rest = text[: match.start()].rstrip()
    tokens = word["word"].replace(".", "").split()  # "p.m." → pm, "sq. units" → sq units
    key = [t if len(t) == 1 else t.lower() for t in tokens]  # single letters keep case: "e" is not "E"
    if key[0] in _MAGNITUDES:  # ``5\text{ million}`` is 5·10^6, not 5
        rest = f"{rest}\\cdot {_MAGNITUDES[key[0]]}"
        tokens, key = tokens[1:], key[1:]
        if not tokens:
            return rest, None
    if any(k in _VALUE_WORDS for k in key) or (len(key) == 1 and key[0] in _POWER_WORDS):
        return None
    return rest, _canonical_unit(" ".join(tokens), word["power"] or match["power"])


# -- LaTeX reading --------------------------------------------------------------------------------------------
_ARG_COMMANDS = re.compile(
    r"\\(?:(?P<two>[dtc]?frac|[dt]?binom)|(?P<one>sqrt|overline|bar|dot))(?![a-zA-Z])|(?<!\\)_"
)  # a subscript takes one token too: \log_2 8 is \log_{2} 8 (not the digits "2 8")
_ARG_TOKEN = re.compile(r"\s*(?:(?P<group>\{)|(?P<token>\\[a-zA-Z]+|\\.|[^\s{}]))", re.DOTALL)


_BRACE_TOKENS = re.compile(r"\\.|[{}]", re.DOTALL)  # an escaped character (\{, \}, \\) or a brace


def _matching_braces(text: str) -> dict[int, int]:
    """Opening index → closing index of every balanced ``{...}`` (escaped ``\\{ \\}`` do not count)."""
    pairs, stack = {}, []
    for token in _BRACE_TOKENS.finditer(text):
        if token.group() == "{":
            stack.append(token.start())
        elif token.group() == "}" and stack:
            pairs[stack.pop()] = token.start()
    return pairs


def brace_arguments(text: str) -> str:
    """Brace the one-token arguments of ``\\frac``, ``\\binom``, ``\\sqrt``, ``\\overline`` and of a subscript ``_``
    as TeX reads them.

    TeX takes one token per argument: ``\\frac12`` is ``\\frac{1}{2}``, ``\\frac123`` is ``\\frac{1}{2}3`` and
    ``\\sqrt23`` is ``\\sqrt{2}3`` (3√2, not √23). math-verify's own fix-up reads ``\\sqrt{23}``; this runs first.
    ``\\log_2 8`` is ``\\log_{2} 8``: braced, its subscript is no longer one of two digits apart (ambiguous ``2 8``).
    """
    if not _ARG_COMMANDS.search(text):
        return text
    closing = _matching_braces(text)
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement): the spaces TeX skips go too
    for command in _ARG_COMMANDS.finditer(text):
        pos = command.end()
        if command["one"] == "sqrt":  # an optional [n] index
            index = re.match(r"\s*\[[^\[\]]*\]", text[pos:])
            pos += index.end() if index else 0
        for _ in range(2 if command["two"] else 1):
            token = _ARG_TOKEN.match(text, pos)
            if not token:
                break
            if token["group"]:
                end = closing.get(token.start("group"))
                if end is None:
                    break
                edits.append((pos, token.start("group"), ""))
                pos = end + 1
            else:
                edits.append((pos, token.end("token"), f"{{{token['token']}}}"))
                pos = token.end("token")
    out, last = [], 0
    for start, end, replacement in sorted(edits):
        if start >= last:  # malformed input (``\frac\sqrt 2``) can overlap: the first edit wins
            out += [text[last:start], replacement]
            last = end
    return "".join(out) + text[last:]


_THIN_GROUPS = re.compile(r"(?<![\d.])\d{1,3}(?:(?P<sep>\\,|\{,\})\d{3})(?:(?P=sep)\d{3})*(?!\d)")
_DIGIT_GAP = re.compile(r"\d(?:\s|~|\\[,;:! ]|\\q?quad|\{,\})+\d")
_REPEATING = re.compile(r"(?<![\d.])(?P<int>\d*)\.(?P<fixed>\d*)\\(?:overline|bar|dot)\{(?P<rep>\d+)\}(?![\d{])")


def _repeating_to_fraction(match: re.Match) -> str:
    integer, fixed, repeat = match["int"] or "0", match["fixed"], match["rep"]
    value = int(integer) + Fraction(int(fixed or 0), 10 ** len(fixed))
    value += Fraction(int(repeat), (10 ** len(repeat) - 1) * 10 ** len(fixed))
    return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


_APPROX = re.compile(r"\\(?:approx|thickapprox|simeq)(?![a-zA-Z])")


def _approximation(text: str) -> str:
    """What an answer with ``\\approx`` states: its first value. ``\\approx 8.24`` and ``x \\approx 8.24`` state
    8.24, ``\\frac23 \\approx 0.67`` states 2/3 (the rounding is a comment), so it is never two answers at once."""
    if "\\approx" not in text and "\\simeq" not in text and "\\thickapprox" not in text:
        return text
    parts = [part.strip() for part in _APPROX.split(text)]
    values = [part for part in parts if part and not re.fullmatch(r"[A-Za-z]{1,3}", part)]
    return values[0] if values and len(parts) > 1 else text


def _constant(match: re.Match) -> str:
    """``\\mathrm{e}`` → ``e``: after a letter or a command word with a space (``\\pi e``, not ``\\pie``), else
    joined (``2e``; math-verify reads a spaced ``2 i`` as complex but ``3+2i`` as real, so the two must match)."""
    before = match.string[max(match.start() - 1, 0) : match.start()]
    return (" " if before.isalpha() else "") + match[1]


def read_answer(text: str) -> Reading | None:
    """The answer as the reward reads it, or None when it cannot be read unambiguously (the pair is rejected).

    In order: ``\\approx`` keeps the first value (``a \\approx b`` states a, ``\\approx b`` b); upright ``\\mathrm{e}``
    and ``\\mathrm{i}`` are the constants e and i; ``\\$``, ``\\%`` and degree marks are units; a trailing
    ``\\text{word}`` is a unit unless the word changes the value (magnitudes are multiplied out:
    ``5\\text{ million}`` → ``5\\cdot 10^{6}``; ``squared``, ``halves``, ``i``, ``negative``, ``M`` ... reject);
    one-token arguments are braced as TeX reads them; ``1\\,000`` and ``1{,}000`` are 1000; digits separated by
    space (``1 2``, ``1\\,2``) are ambiguous and reject; ``0.\\overline{3}`` is ``\\frac{1}{3}``.
    """
    if len(text) > MAX_CHARS:
        return None
    text = _approximation(text.strip().rstrip(".").strip())
    text = _CONSTANT_FONT.sub(_constant, text)
    units = []
    if "\\$" in text:
        text, units = text.replace("\\$", ""), ["$"]
    text = text.replace("$", "")  # math-mode delimiters
    split = _trailing_unit(text)
    if split is None:
        return None
    text, unit = split
    units += [unit] if unit else []
    for pattern, name in ((_PERCENT, "%"), (_DEGREES, "deg")):
        stripped = pattern.sub("", text).strip()
        if stripped != text.strip() and stripped:
            text, units = stripped, [*units, name]
    text = brace_arguments(text.strip())
    text = _THIN_GROUPS.sub(lambda m: re.sub(r"\D", "", m.group()), text)
    if _DIGIT_GAP.search(text):
        return None
    text = _REPEATING.sub(_repeating_to_fraction, text)
    if not text.strip():
        return None
    return Reading(text.strip(), tuple(sorted(set(units))))


# -- pairs ----------------------------------------------------------------------------------------------------
_SIZING = re.compile(r"\\(?:left|right|[bB]igg?[lr]?)(?![a-zA-Z])|\s")


def shape(core: str) -> str:
    """``set`` (``\\{1,2\\}``), ``tuple`` (``(1,2)``, ``[1,2)``: a point or an interval), ``list`` (``1, 2``), else
    ``scalar``. A set of values is not an ordered pair, and neither is a bare list."""
    text = _SIZING.sub("", core)
    if text.startswith("\\{") and text.endswith("\\}"):
        return "set"
    depth, top_comma, inner_comma, wraps = 0, False, False, text[:1] in "([" and text[-1:] in ")]"
    for i, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            wraps = wraps and (depth > 0 or i == len(text) - 1)
        elif char == ",":
            top_comma = top_comma or depth == 0
            inner_comma = inner_comma or depth == 1
    if top_comma:
        return "list"
    return "tuple" if wraps and inner_comma else "scalar"


_CLASHING_SHAPES = ({"set", "tuple"}, {"list", "tuple"})


def prepare_pair(gold: str, pred: str) -> tuple[str, str] | None:
    """The (gold, pred) LaTeX that math-verify should compare, or None when the reading rules already reject.

    Rejected here: an answer :func:`read_answer` cannot read; two different units (``5\\text{ m}`` vs
    ``5\\text{ cm}``; a unit on one side only is allowed: ``5\\text{ cm}`` vs ``5``); a set against a tuple or
    interval, a bare list against a tuple.
    """
    gold_reading, pred_reading = read_answer(gold), read_answer(pred)
    if gold_reading is None or pred_reading is None:
        return None
    if gold_reading.units and pred_reading.units and gold_reading.units != pred_reading.units:
        return None
    if {shape(gold_reading.core), shape(pred_reading.core)} in _CLASHING_SHAPES:
        return None
    return gold_reading.core, pred_reading.core


# -- after parsing (sympy; imported lazily so the fast path never loads it) ------------------------------------
@functools.cache
def extraction_config() -> tuple:
    """math-verify's default extraction without its unit stripping (:func:`read_answer` handles units)."""
    from latex2sympy2_extended.latex2sympy2 import NormalizationConfig
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    normalization = NormalizationConfig(
        basic_latex=True, units=False, malformed_operators=True, nits=True, boxed="all", equations=False
    )
    return (LatexExtractionConfig(normalization_config=normalization), ExprExtractionConfig())


def exact_decimals(parsed: list) -> list:
    """Every float replaced by the exact rational its digits spell (``0.3333333`` → 3333333/10^7), so ``verify``
    compares values exactly instead of after rounding to 6 digits."""
    from sympy import Basic, Float, Rational
    from sympy.matrices import MatrixBase

    out = []
    for item in parsed:
        if isinstance(item, Basic | MatrixBase) and item.atoms(Float):
            with contextlib.suppress(TypeError, ValueError):  # inf, nan: left as they are
                item = item.xreplace({f: Rational(str(f)) for f in item.atoms(Float)})
        out.append(item)
    return out


def parse_exact(parse: Any, text: str, timeout: int) -> list:
    """math-verify's ``parse`` of ``$text$`` with :func:`extraction_config`, then :func:`exact_decimals`."""
    return exact_decimals(parse(f"${text}$", extraction_config=extraction_config(), parsing_timeout=timeout))


def equations_acceptable(gold: list, pred: list) -> bool:
    """A predicted equation is an answer only as an assignment ``name = value`` (a chain ``x = 4/2 = 2`` only when
    every value is equal), and the value must not contain the name. Without this, math-verify takes the last
    right-hand side of any equation: ``1=1``, ``2x=4`` and ``x=2=1`` would all be answers (1, 4 and 1)."""
    from sympy import And, Eq, Symbol, simplify
    from sympy.core.function import AppliedUndef
    from sympy.core.relational import Relational

    def relation(expr: Any) -> bool:
        return isinstance(expr, Relational) or (
            isinstance(expr, And) and all(isinstance(a, Relational) for a in expr._unsorted_args)
        )

    gold_is_relation = any(relation(g) for g in gold if not isinstance(g, str))
    for expr in (p for p in pred if not isinstance(p, str)):
        if not relation(expr):
            continue
        parts = list(expr._unsorted_args) if isinstance(expr, And) else [expr]
        if not all(isinstance(part, Eq) for part in parts):
            if gold_is_relation:
                continue  # an inequality against an inequality: math-verify compares them
            return False
        if gold_is_relation and len(parts) == 1:
            continue  # one equation against another: math-verify compares them
        sides = [side for part in parts for side in (part.lhs, part.rhs)]
        names = {side for side in sides if isinstance(side, Symbol | AppliedUndef)}
        values = [side for side in sides if side not in names]
        if len(names) != 1 or not values:
            return False
        (name,) = names
        if any(value.has(name) for value in values):
            return False
        for value in values[1:]:
            try:
                if value != values[0] and simplify(value - values[0]) != 0:
                    return False
            except Exception:
                return False
    return True


def agree(gold: list, pred: list, verify: Any, timeout: int) -> bool:
    """The final comparison of two :func:`parse_exact` results: equations first, then ``verify``."""
    if not gold or not pred or not equations_acceptable(gold, pred):
        return False
    return bool(verify(gold, pred, timeout_seconds=timeout, **VERIFY_OPTIONS))
