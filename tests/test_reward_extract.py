"""Answer extraction and the fast path (no worker processes)."""

from __future__ import annotations

import sys

import pytest

from dgpo.rewards import extract as extract_module
from dgpo.rewards import extract_answer, extract_boxed, fast_equal, normalize
from dgpo.rewards.extract import MAX_BOXES_TRIED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"so \boxed{\frac{1}{2}}.", r"\frac{1}{2}"),
        (r"\boxed{1} then finally \boxed{b{c}}", "b{c}"),  # the last box, nested braces kept
        (r"\fbox{7}", "7"),
        (r"\boxed 2.", "2"),  # brace-less MATH form
        (r"\boxed {5}", "5"),
        (r"\boxed{\{1,2\}}", r"\{1,2\}"),  # escaped braces do not close the group
        (r"\boxed{x} and \boxed{unbalanced", "x"),  # an unclosed last box falls back to the previous one
        (r"\boxed{1", None),
        ("no box here", None),
    ],
)
def test_extract_boxed(text, expected):
    assert extract_boxed(text) == expected


def test_answer_is_fallback_is_off_by_default():
    text = "Thus the answer is 42. Done."
    assert extract_answer(text) is None
    assert extract_answer(text, fallback="answer_is") == "42"
    assert extract_answer(r"\boxed{7} but the answer is 42.", fallback="answer_is") == "7"
    with pytest.raises(ValueError, match="unknown answer fallback 'last_number'"):
        extract_answer("x", fallback="last_number")


def _lines_run(function, *args) -> int:
    """How many Python lines of dgpo.rewards.extract run during ``function(*args)``: a clock-free work count."""
    count = 0

    def tracer(frame, event, arg):
        nonlocal count
        if frame.f_code.co_filename != extract_module.__file__:
            return None
        if event == "line":
            count += 1
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        function(*args)
    finally:
        sys.settrace(previous)
    return count


#: Adversarial completions of size ~n: deep nesting, a long prefix, many unclosed boxes, braces inside out.
ADVERSARIAL = {
    "deep nesting": lambda n: "\\boxed{" + "{" * n + "1" + "}" * n + "}",
    "long prefix": lambda n: "x" * (100 * n) + r"\boxed{5}",
    "unclosed boxes": lambda n: "\\boxed{" * n,
    "unclosed boxes then braces": lambda n: "\\boxed{" * n + "{" * n,
    "inside-out braces": lambda n: "}" * n + "{" * n,
    "boxes of unclosed groups": lambda n: (r"\boxed{{" + "{" * 50) * (n // 50),
}


@pytest.mark.parametrize("make", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_extraction_is_linear_on_adversarial_text(make, monkeypatch):
    # Work is counted, not timed: the Python lines the extractor runs on inputs of size n and 2n. Linear work
    # at most doubles (plus a constant); a scan restarted at every box, or every brace, would quadruple it.
    tried = []
    braced = extract_module._braced
    monkeypatch.setattr(extract_module, "_braced", lambda text, start: tried.append(start) or braced(text, start))
    small, large = (_lines_run(extract_boxed, make(n)) for n in (2_000, 4_000))
    assert large <= 2.2 * small + 100, (small, large)
    assert len(tried) <= 2 * MAX_BOXES_TRIED  # the brace groups scanned, over both calls: a constant per call


def test_the_work_counter_sees_quadratic_work():
    # The counter above would catch a quadratic extractor: this one rescans the text once per opening brace.
    def quadratic(text):
        return [extract_module._braced(text, i) for i in range(len(text)) if text[i] == "{"]

    small, large = (_lines_run(quadratic, "{" * n) for n in (200, 400))
    assert large > 3.5 * small


@pytest.mark.parametrize(
    ("gold", "pred"),
    [
        ("025", "25"),  # AIME zero padding
        ("0.5", r"\frac12"),
        (r"\frac{1}{2}", r"\dfrac{1}{2}"),
        ("3", "x = 3"),
        ("35280", "35,280"),
        ("1000", r"1\,000"),
        (r"30^\circ", "30"),  # a unit on the gold is dropped ...
        (r"50\%", "50"),
        (r"2\text{ miles}", "2"),
        (r"5\text{ cm}", r"5\text{ centimeters}"),  # ... and the same unit on both sides
        (r"\left( 1, 2 \right)", "(1,2)"),
        (r"\text{Thursday}", "{Thursday}"),
        ("10", "10.0"),
        (r"\frac{1}{3}", r"0.\overline{3}"),
        (r"3\sqrt{2}", r"3\sqrt2"),
        ("1 000 000", "1 000 000"),  # the very same string
    ],
)
def test_fast_path_accepts_presentation_differences(gold, pred):
    assert fast_equal(gold, pred) is True


@pytest.mark.parametrize(
    ("gold", "pred", "expected"),
    [
        ("25", "26", False),  # two plain numbers: decided exactly
        ("0.5", "0.51", False),
        (r"\frac{1}{3}", "0.3333333", False),  # no rounding: the worker compares exactly too
        (r"50\%", "0.5", False),  # `50\%` reads 50
        ("12", "1 2", None),  # never deletes the space between two digits; the worker rejects
        ("12", r"1\,2", None),
        (r"\sqrt{23}", r"\sqrt23", None),  # TeX: \sqrt{2}3
        ("5", r"5\text{ million}", None),  # a magnitude is not a unit
        ("2", r"2\mathrm{i}", None),
        (r"5\text{ m}", r"5\text{ cm}", None),  # another unit: the worker rejects
        ("2", r"2\text{ miles}", None),  # a unit on the prediction alone: the worker decides
        ("x+1", "x=x+1", None),  # `x =` is dropped only before a plain number
        ("x=3", "y=3", None),
        (r"\sin hx", r"\sinh x", None),  # a space after a command word is kept
        (r"\sqrt{3}/2", r"\frac{\sqrt3}{2}", None),
    ],
)
def test_fast_path_rejects_only_different_plain_numbers_and_defers_the_rest(gold, pred, expected):
    assert fast_equal(gold, pred) is expected


def test_normalize_reads_one_token_arguments_like_tex():
    assert normalize(r"\frac12") == r"\frac{1}{2}" and normalize(r"\sqrt3") == r"\sqrt{3}"
    assert normalize(r"\sqrt23") == r"\sqrt{2}3" and normalize(r"\frac123") == r"\frac{1}{2}3"
    assert normalize("1 2") == "1 2" and normalize(r"\pi r") == r"\pi r" and normalize(r"\leftarrow") == r"\leftarrow"
    assert normalize(r"\pi\ r") == r"\pi r"  # a control space is a space, not "\r"
    assert normalize(r"\begin{pmatrix} 4 \\ -3 \end{pmatrix}") == r"\begin{pmatrix}4\\-3\end{pmatrix}"  # "\\" kept
