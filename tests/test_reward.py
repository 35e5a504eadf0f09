"""The math reward end to end, with real math-verify worker processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dgpo.rewards import MathReward, MathVerifier, compute_score, math_reward

DATA = Path(__file__).resolve().parents[1] / "src" / "dgpo" / "data" / "eval_sets"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def verifier():
    v = MathVerifier(workers=2, timeout=3.0)
    yield v
    v.close()


EQUIVALENT = [
    ("0.5", r"\frac12"),
    ("0.5", r"\dfrac{1}{2}"),
    (r"\frac{1}{2}", "0.5"),
    ("3", "x = 3"),
    (r"\frac{\sqrt3}{2}", r"\sqrt{3}/2"),
    (r"[1, 2)", r"[1,2)"),
    (r"(0, \infty)", r"(0,\infty)"),
    (r"\{1, 2\}", r"\{2, 1\}"),
    (r"30^\circ", "30"),
    (r"50\%", "50"),
    ("025", "25"),
    (r"2\sqrt{2}", r"\sqrt{8}"),
    (r"x^2 + 2x + 1", r"(x+1)^2"),
]
NEAR_MISSES = [
    ("0.5", r"\frac{1}{3}"),
    ("3", "x = 4"),
    (r"\frac{\sqrt3}{2}", r"\sqrt{2}/2"),
    (r"[1, 2)", r"[1, 2]"),
    (r"\{1, 2\}", r"\{1, 3\}"),
    (r"30^\circ", "60"),
    ("25", "250"),
    (r"x^2 + 2x + 1", r"(x-1)^2"),
]


def test_equivalent_pairs_verify_and_near_misses_do_not(verifier):
    golds = [g for g, _ in EQUIVALENT + NEAR_MISSES]
    completions = [f"Work... so \\boxed{{{p}}}" for _, p in EQUIVALENT + NEAR_MISSES]
    scored = verifier.score(completions, golds)
    rewards = [s.reward for s in scored]
    assert rewards[: len(EQUIVALENT)] == [1.0] * len(EQUIVALENT), list(zip(EQUIVALENT, scored, strict=False))
    assert rewards[len(EQUIVALENT) :] == [0.0] * len(NEAR_MISSES), list(
        zip(NEAR_MISSES, scored[len(EQUIVALENT) :], strict=False)
    )


def test_math500_gold_solutions_verify_against_their_answers(verifier):
    rows = [json.loads(line) for line in (DATA / "math500.jsonl").open()]
    scored = verifier.score([r["solution"] for r in rows], [r["answer"] for r in rows])
    wrong = [(r["id"], r["answer"], s.pred) for r, s in zip(rows, scored, strict=True) if s.reward != 1.0]
    assert not wrong


@pytest.mark.skipif(not (SHARED / "math_train.jsonl").exists(), reason="needs ../shared/data/math_train.jsonl")
def test_non_identical_math_train_pairs_are_accepted_at_least_as_often_as_raw_math_verify(verifier):
    # 1,150 rows whose `answer` and `answer_normalized` differ; raw math-verify ($…$-wrapped) accepts 88.9%.
    rows = [json.loads(line) for line in (SHARED / "math_train.jsonl").open()]
    pairs = [
        (r["answer"], r["answer_normalized"]) for r in rows if r["answer"] and r["answer"] != r["answer_normalized"]
    ]
    assert len(pairs) == 1150
    scored = verifier.score([f"\\boxed{{{b}}}" for _, b in pairs], [a for a, _ in pairs])
    rate = sum(s.reward for s in scored) / len(pairs)
    print(f"acceptance with fast path: {rate:.4f}")
    assert rate >= 0.889


ADVERSARIAL = [
    r"\boxed{10^{10^{10^{10}}}}",
    "\\boxed{" + "{" * 10_000 + "1" + "}" * 10_000 + "}",
    "x" * 1_000_000,
    "\\boxed{" + "9" * 1_000_000 + "}",
    r"\boxed{(1, 2]] \frac{{1}{2}",
    "\\boxed{" + bytes(range(256)).decode("latin-1").replace("{", "").replace("}", "") + "}",
    "\\boxed{\x00\x01\xff\ufffd}",
]


@pytest.mark.slow
def test_adversarial_inputs_return_zero_within_the_timeout(verifier):
    before = verifier.metrics()
    scored = verifier.score(ADVERSARIAL, ["1"] * len(ADVERSARIAL))
    assert [s.reward for s in scored] == [0.0] * len(ADVERSARIAL)
    statuses = [s.status for s in scored]
    assert set(statuses) <= {"incorrect", "timeout", "error", "too_long", "no_answer"}
    # The power tower cannot be decided: the pool cuts it at the deadline (only a deadline answers "timeout").
    assert statuses[0] == "timeout", scored[0]
    after = verifier.metrics()
    assert after["reward/timeout"] - before["reward/timeout"] == statuses.count("timeout")
    assert after["reward/scored"] - before["reward/scored"] == len(ADVERSARIAL)
    # The killed workers were replaced: the pool still answers.
    assert len(verifier.pool.pids) == 2
    assert [s.reward for s in verifier.score([r"\boxed{\sqrt{8}}"] * 2, [r"2\sqrt{2}"] * 2)] == [1.0, 1.0]


@pytest.mark.slow
def test_a_timeout_scores_zero_is_counted_and_the_worker_is_replaced():
    v = MathVerifier(workers=1, timeout=1.0)
    try:
        v.score([r"\boxed{1}"], [r"\sqrt{2}"])  # warm the worker up
        before = v.pool.pids
        (scored,) = v.score([r"\boxed{10^{10^{10^{10}}}}"], ["1"])
        assert scored.reward == 0.0 and scored.status == "timeout"  # answered by the pool's deadline
        metrics = v.metrics()
        assert metrics["reward/timeout"] == 1.0
        # A missed deadline is retried once on a fresh worker (a worker can be late through no fault of the input);
        # the real hang misses it again and ends as a timeout. A timeout is not a death.
        assert metrics["reward/worker_deaths"] == 0.0 and metrics["reward/retries"] == 1.0
        assert v.pool.pids != before
        assert v.score([r"\boxed{\sqrt{8}}"], [r"2\sqrt{2}"])[0].reward == 1.0  # the replacement works
    finally:
        v.close()


def test_trl_reward_function_signature_and_conversational_completions():
    reward = MathReward(workers=1)
    try:
        assert reward.__name__ == "math_reward"
        plain = reward(completions=[r"\boxed{4}", "no answer"], answer=["4", "4"], prompts=["p", "p"])
        chat = reward(completions=[[{"role": "assistant", "content": r"so \boxed{04}"}]], answer=["4"])
        assert plain == [1.0, 0.0] and chat == [1.0]
        with pytest.raises(ValueError, match="got 1 completions but 2 answers"):
            reward(completions=["x"], answer=["1", "2"])
    finally:
        reward.close()


NOT_TEXT = [
    None,
    42,
    3.5,
    b"\\boxed{4}",
    ["\\boxed{4}"],
    [],
    [{"role": "assistant"}],
    [{"role": "assistant", "content": None}],
    [{"role": "assistant", "content": [{"type": "text", "text": "\\boxed{4}"}]}],
    {"content": "\\boxed{4}"},
]


@pytest.mark.parametrize("completion", NOT_TEXT, ids=repr)
def test_a_completion_that_is_not_text_scores_zero_as_invalid_and_never_raises(verifier, completion):
    scored = verifier.score([completion, "\\boxed{4}"], ["4", "4"])
    assert (scored[0].reward, scored[0].status, scored[0].pred) == (0.0, "invalid", None)
    assert (scored[1].reward, scored[1].status) == (1.0, "correct")  # the rest of the batch is scored as usual


def test_held_out_rows_are_scored_through_the_same_interface_as_countdown():
    reward = MathReward(workers=1)
    try:
        rows = [{"problem": "1+3?", "answer": "4"}, {"problem": "2+2?", "answer": "5"}]
        assert reward.score_rows(["\\boxed{4}", "\\boxed{4}"], rows) == [1.0, 0.0]
    finally:
        reward.close()


def test_single_answer_and_verl_hook():
    assert math_reward(r"The sum is \boxed{\frac{3}{6}}.", "0.5") == 1.0
    assert compute_score("aime24", r"\boxed{073}", "73", extra_info={"index": 0}) == 1.0
    assert compute_score("aime24", r"\boxed{72}", "73") == 0.0


@pytest.mark.slow
def test_workers_die_when_the_parent_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys\n"
        "from dgpo.rewards import MathVerifier\n"
        "v = MathVerifier(workers=2)\n"
        "v.score([r'\\boxed{1}'], [r'\\sqrt{1}'])\n"
        "print(*v.pool.pids, flush=True)\n"
        "sys.stdin.read()\n"  # holds until killed
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    pids = [int(p) for p in parent.stdout.readline().split()]
    assert len(pids) == 2
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    parent.stdin.close()
    give_up = time.monotonic() + 60  # only against a hang: the workers notice at once that their parent is gone
    alive = pids
    while alive and time.monotonic() < give_up:
        alive = [pid for pid in pids if _alive(pid)]
        time.sleep(0.1)
    assert not alive, f"orphaned reward workers: {alive}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (dead, not yet reaped by init) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False
