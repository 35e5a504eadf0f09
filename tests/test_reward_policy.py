"""The reading rules (dgpo.rewards.policy) and a property test of the fast path against sympy's values.

No worker processes: the math-verify parts run in this process (main thread, so its SIGALRM timeouts work).
"""

from __future__ import annotations

from fractions import Fraction

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from dgpo.rewards import fast_equal
from dgpo.rewards.policy import Reading, brace_arguments, prepare_pair, read_answer, shape


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5", Reading("5")),
        (r"2 \text{ euros}", Reading("2", ("euro",))),
        (r"5\text{ million}", Reading(r"5\cdot 10^{6}")),  # a magnitude is multiplied out, never dropped
        (r"\$1.5\text{ million}", Reading(r"1.5\cdot 10^{6}", ("$",))),
        (r"5\text{ k}", Reading(r"5\cdot 10^{3}")),
        (r"5\text{ m}", Reading("5", ("meter",))),
        (r"5\text{ M}", None),  # million or molar: ambiguous, single letters keep their case
        (r"\approx 8.24 \text{ mph}", Reading("8.24", ("mile/hour",))),
        (r"\frac23 \approx 0.67", Reading(r"\frac{2}{3}")),  # the first value; the rounding is a comment
        (r"5\text{ squared}", None),  # a value word: the answer cannot be read
        (r"2\text{ pi}", None),
        (r"3\text{ halves}", None),
        (r"2\mathrm{e}", Reading("2e")),  # upright e and i are the constants
        (r"3+2\mathrm{i}", Reading("3+2i")),
        (r"\pi\mathrm{e}", Reading(r"\pi e")),
        (r"5\text{ cm}^2", Reading("5", ("centimeter^2",))),
        (r"20\text{ sq. units}", Reading("20", ("unit^2",))),
        (r"20\text{ square units}", Reading("20", ("unit^2",))),
        (r"20\text{ units}^2", Reading("20", ("unit^2",))),
        (r"12\text{ inches}", Reading("12", ("inch",))),
        (r"4\!:\!51 \text{ p.m.}", Reading(r"4\!:\!51", ("pm",))),
        (r"50\%", Reading("50", ("%",))),
        (r"50\text{ percent}", Reading("50", ("%",))),
        (r"30^\circ", Reading("30", ("deg",))),
        (r"30^{\circ}", Reading("30", ("deg",))),
        (r"\$5", Reading("5", ("$",))),
        (r"5\text{ dollars}", Reading("5", ("$",))),
        (r"\text{Thursday}", Reading(r"\text{Thursday}")),  # the text is the answer, not a unit
        (r"\text{(A)}", Reading(r"\text{(A)}")),
        (r"1\,000", Reading("1000")),
        (r"1{,}000{,}000", Reading("1000000")),
        ("1 2", None),  # digits apart by spacing are ambiguous
        (r"1\,2", None),
        (r"1{,}2", None),
        ("1 000", None),
        (r"\dfrac 3 8", Reading(r"\dfrac{3}{8}")),  # TeX's one-token arguments, not a digit gap
        (r"0.\overline{3}", Reading(r"\frac{1}{3}")),
        (r"-1.2\overline{3}", Reading(r"-\frac{37}{30}")),
        (r"0.\bar{6}", Reading(r"\frac{2}{3}")),
        ("5.", Reading("5")),
        ("", None),
    ],
)
def test_read_answer(text, expected):
    assert read_answer(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"\frac12", r"\frac{1}{2}"),
        (r"\frac123", r"\frac{1}{2}3"),
        (r"\sqrt23", r"\sqrt{2}3"),
        (r"\sqrt{23}", r"\sqrt{23}"),
        (r"\frac{\sqrt3}2", r"\frac{\sqrt{3}}{2}"),
        (r"\frac\pi 2", r"\frac{\pi}{2}"),
        (r"\sqrt[3]8", r"\sqrt[3]{8}"),
        (r"\dbinom52", r"\dbinom{5}{2}"),
        (r"\frac{1", r"\frac{1"),  # unbalanced: left as it is
    ],
)
def test_brace_arguments_reads_like_tex(text, expected):
    assert brace_arguments(text) == expected


@pytest.mark.parametrize(
    ("core", "expected"),
    [
        (r"\{1,2\}", "set"),
        (r"\left\{ 1, 2 \right\}", "set"),
        ("(1,2)", "tuple"),
        ("[1,2)", "tuple"),
        (r"\left( 3, \frac{\pi}{2} \right)", "tuple"),
        ("1, 2", "list"),
        ("(1,2), (3,4)", "list"),
        (r"(0,1) \cup (2,3)", "scalar"),
        ("(1+2)", "scalar"),
        ("5", "scalar"),
    ],
)
def test_shape(core, expected):
    assert shape(core) == expected


@pytest.mark.parametrize(
    ("gold", "pred", "expected"),
    [
        ("5", r"5\text{ cm}", ("5", "5")),  # a unit on one side only is an annotation
        (r"5\text{ m}", r"5\text{ cm}", None),  # two different units
        (r"5\text{ cm}", r"5\text{ centimeters}", ("5", "5")),
        (r"\{1,2\}", "(1,2)", None),
        ("(1,2)", "1,2", None),
        (r"\{1,2\}", "1,2", (r"\{1,2\}", "1,2")),
        ("12", "1 2", None),
    ],
)
def test_prepare_pair(gold, pred, expected):
    assert prepare_pair(gold, pred) == expected


def test_decimals_are_exact_and_equations_must_be_assignments():
    math_verify = pytest.importorskip("math_verify")
    from dgpo.rewards.policy import agree, equations_acceptable, parse_exact

    def parsed(text):
        return parse_exact(math_verify.parse, text, 5)

    assert parsed("0.3333333")[0] == sympy.Rational(3333333, 10**7)
    assert not agree(parsed(r"\frac{1}{3}"), parsed("0.3333333"), math_verify.verify, 5)
    assert agree(parsed(r"\frac{1}{4}"), parsed("0.25"), math_verify.verify, 5)
    assert not agree(parsed(r"\sqrt{2}"), parsed(r"\sqrt{2}+10^{-20}"), math_verify.verify, 5)
    for pred, ok in [("x=1", True), ("f(x)=1", True), ("1=1", False), ("2x=2", False), ("x=2=1", False)]:
        assert equations_acceptable(parsed("1"), parsed(pred)) is ok, pred
    assert equations_acceptable(parsed("1"), parsed(r"x=\frac{2}{2}=1"))
    assert equations_acceptable(parsed("y=2x+1"), parsed("y=1+2x"))  # equation vs equation: math-verify decides


# -- property test: the fast path against the values sympy gives the strings ------------------------------------
@st.composite
def numbers(draw) -> Fraction:
    kind = draw(st.sampled_from(["integer", "big integer", "fraction", "decimal"]))
    if kind == "integer":
        return Fraction(draw(st.integers(-30, 30)))
    if kind == "big integer":
        return Fraction(draw(st.integers(-(10**7), 10**7)))
    if kind == "fraction":
        return Fraction(draw(st.integers(-40, 40)), draw(st.integers(1, 12)))
    digits = draw(st.integers(1, 4))
    return Fraction(draw(st.integers(-(10**5), 10**5)), 10**digits)


def _decimal(value: Fraction) -> str | None:
    """The terminating decimal of ``value``, or None when it does not terminate."""
    for digits in range(8):
        scaled = value * 10**digits
        if scaled.denominator == 1:
            sign, whole = ("-" if scaled < 0 else ""), str(abs(scaled.numerator)).rjust(digits + 1, "0")
            return f"{sign}{whole[: len(whole) - digits]}.{whole[len(whole) - digits :]}" if digits else None
    return None


@st.composite
def spellings(draw, value: Fraction) -> tuple[str, sympy.Expr | None, bool]:
    """(LaTeX, the sympy value it denotes or None when ambiguous, whether it is a plain number the fast path reads).

    Most spellings denote ``value``; the traps denote something else (as TeX reads them) or nothing."""
    num, den = value.numerator, value.denominator
    sign = "-" if value < 0 else ""
    plain: list[str] = []
    if den == 1:
        plain += [str(num), f"{num}.0", f"{num}.00", f"{{{num}}}", f"\\frac{{{num}}}{{1}}", f"x = {num}"]
        plain += [f"0{num}"] if num >= 0 else []
        if abs(num) >= 1000:
            grouped = f"{abs(num):,}"
            plain += [sign + grouped, sign + grouped.replace(",", "{,}"), sign + grouped.replace(",", "\\,")]
    else:
        body = f"\\frac{{{abs(num)}}}{{{den}}}"
        plain += [sign + body, sign + body.replace("frac", "dfrac"), f"\\frac{{{num}}}{{{den}}}", f"{num}/{den}"]
        plain += [f"{num * 3}/{den * 3}", sign + f"\\tfrac {{{abs(num)}}} {{{den}}}"]
        if abs(num) < 10 and den < 10:
            plain += [f"{sign}\\frac{abs(num)}{den}"]
    decimal = _decimal(value)
    if decimal:
        plain += [decimal, decimal + "00"]
        plain += [decimal.replace("0.", ".", 1)] if decimal.lstrip("-").startswith("0.") else []
    exact = sympy.Rational(num, den)
    a, b = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    traps = [
        (f"\\sqrt{{{abs(num)}}}", sympy.sqrt(abs(num))),
        (f"\\sqrt{a}{b}", sympy.sqrt(a) * b),  # TeX: \sqrt{a}b, not \sqrt{ab}
        (f"{a}\\sqrt{{{b}}}", a * sympy.sqrt(b)),
        (f"\\frac{a}{b}{abs(num) % 10}", sympy.Rational(a, b) * (abs(num) % 10)),  # \frac{a}{b} times a digit
        (f"{a} {b}", None),  # ambiguous: neither ab nor a+b nor a*b
        (f"{a}\\,{b}", None),
        (f"{a}{{,}}{b}", None),
        (f"{str(abs(num))[:1]} {str(abs(num))[1:]}", None if abs(num) >= 10 else abs(num)),
    ]
    if draw(st.booleans()) or not plain:
        text, denoted = draw(st.sampled_from(traps))
        return text, denoted if denoted is None else sympy.sympify(denoted), False
    return draw(st.sampled_from(plain)), exact, True


def _tex_sqrt(digits: str) -> sympy.Expr:
    """``\\sqrt`` followed by bare digits: TeX takes one digit as the radicand (``\\sqrt23`` is 3√2)."""
    return sympy.sqrt(int(digits[0])) * (int(digits[1:]) if len(digits) > 1 else 1)


@st.composite
def spelled_pairs(draw):
    """Two spellings: of one number or two nearby ones; a radical against its brace-less spellings; an integer
    against its own digits split by spacing (ambiguous, unless a valid thousands group: ``1\\,000``)."""
    mode = draw(st.sampled_from(["numbers", "numbers", "radical", "digits"]))
    if mode == "radical":
        n = draw(st.integers(10, 999))
        digits = str(n)
        gold = (f"\\sqrt{{{n}}}", sympy.sqrt(n), False)
        pred = draw(
            st.sampled_from(
                [
                    (f"\\sqrt{{{n}}}", sympy.sqrt(n), False),
                    (f"\\sqrt{digits}", _tex_sqrt(digits), False),
                    (f"\\sqrt {digits}", _tex_sqrt(digits), False),
                    (f"{digits[0]}\\sqrt{{{digits[1:]}}}", int(digits[0]) * sympy.sqrt(int(digits[1:])), False),
                    (f"\\frac{digits}", sympy.Rational(int(digits[0]), int(digits[1])) * int(digits[2:] or 1), False)
                    if digits[1] != "0"
                    else (f"\\sqrt{{{n}}}", sympy.sqrt(n), False),
                ]
            )
        )
        return gold, pred
    if mode == "digits":
        n = draw(st.integers(10, 10**7))
        digits = str(n)
        cut = draw(st.integers(1, len(digits) - 1))
        separator = draw(st.sampled_from([" ", "\\,", "{,}", "~", "\\;", "\\ ", ","]))
        grouped = separator in ("\\,", "{,}", ",") and len(digits) - cut == 3 and cut <= 3
        value = sympy.Integer(n) if grouped else None
        pred = (digits[:cut] + separator + digits[cut:], value, grouped)
        return (digits, sympy.Integer(n), True), pred if separator != "," or grouped else (pred[0], None, False)
    value = draw(numbers())
    other = draw(
        st.sampled_from(
            [value, value, value + 1, -value, value * 10, value / 10, value + Fraction(1, 10**6), draw(numbers())]
        )
    )
    return draw(spellings(value)), draw(spellings(other))


@settings(max_examples=400)
@given(spelled_pairs())
@pytest.mark.slow
def test_fast_path_never_accepts_different_values_and_decides_plain_numbers(pair):
    (gold, gold_value, gold_plain), (pred, pred_value, pred_plain) = pair
    decided = fast_equal(gold, pred)
    same = None if gold_value is None or pred_value is None else sympy.simplify(gold_value - pred_value) == 0
    if decided is not None and gold.strip() != pred.strip():  # the very same string is accepted, whatever it means
        assert same is decided, (gold, pred, decided)
    if gold_plain and pred_plain:
        assert decided is same, (gold, pred, decided)  # two plain numbers: always decided, exactly
