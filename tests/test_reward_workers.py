"""A verifier that heals: workers killed at start-up, while idle, or with an answer in flight, or never ready.

Deaths are injected deterministically, never timed: a first start-up that exits on purpose, a SIGKILL awaited
until the process is gone, or a kill inside the pool's pipe write (``VerifierPool._write``) — SIGSTOP before the
request is written and SIGKILL after, so the worker can never answer it. Nothing waits on a fixed sleep: every
wait polls a condition with a deadline.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from dgpo.rewards import MathVerifier
from dgpo.rewards.pool import VerifierPool, WorkerStartError

pytestmark = pytest.mark.slow  # every test starts math-verify workers and waits on them (1-5 s each)

# Pairs the fast path cannot decide: each goes to a math-verify worker.
NEEDS_MATH_VERIFY = [(r"2\sqrt{2}", r"\sqrt{8}"), (r"x^2 + 2x + 1", r"(x+1)^2"), (r"\frac{\sqrt3}{2}", r"\sqrt{3}/2")]


def _score(verifier: MathVerifier, pairs: list[tuple[str, str]]):
    return verifier.score([f"so \\boxed{{{pred}}}" for _, pred in pairs], [gold for gold, _ in pairs])


def _wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    try:  # a zombie (dead, not yet reaped) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _worker_children() -> set[int]:
    """Live child processes of this test process that run a reward worker."""
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            command = (entry / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        if int(ppid) == os.getpid() and state != "Z" and b"dgpo.rewards.worker" in command:
            children.add(int(entry.name))
    return children


def _events(verifier: MathVerifier) -> tuple[float, float]:
    metrics = verifier.metrics()
    return metrics["reward/worker_deaths"], metrics["reward/retries"]


@pytest.fixture
def verifier():
    v = MathVerifier(workers=2, timeout=5.0)
    yield v
    v.close()


def _kill_on_write(verifier: MathVerifier, monkeypatch, should_kill, wait_until_gone: bool = False) -> list[int]:
    """Kill the worker inside the pool's request write whenever ``should_kill(request)``; returns the killed pids.

    Default: SIGSTOP before the write, SIGKILL after — the request sits in the pipe of a worker that can never
    read it (the end-of-file path). ``wait_until_gone``: SIGKILL and wait until it exited, then write (the
    broken-pipe path).
    """
    real_write, killed = verifier.pool._write, []

    def write(worker, data: bytes) -> None:
        if not should_kill(data):
            return real_write(worker, data)
        pid = worker.process.pid
        killed.append(pid)
        os.kill(pid, signal.SIGKILL if wait_until_gone else signal.SIGSTOP)
        if wait_until_gone:
            _wait_for(lambda: not _alive(pid), "the worker to exit")
        try:
            return real_write(worker, data)
        finally:
            os.kill(pid, signal.SIGKILL)

    monkeypatch.setattr(verifier.pool, "_write", write)
    return killed


def test_a_worker_that_dies_at_start_up_is_replaced_and_nothing_raises(verifier, tmp_path):
    # The first worker to start exits before it is ready; every later one is a real worker.
    marker = tmp_path / "failed-once"
    script = tmp_path / "flaky_worker.py"
    script.write_text(
        "import os, sys\n"
        f"try:\n    os.close(os.open({str(marker)!r}, os.O_CREAT | os.O_EXCL | os.O_WRONLY))\n"
        "except FileExistsError:\n"
        "    os.execv(sys.executable, [sys.executable, '-m', 'dgpo.rewards.worker'])\n"
        "sys.exit('this start-up fails on purpose')\n"
    )
    verifier.pool.command = [sys.executable, str(script)]
    scored = _score(verifier, NEEDS_MATH_VERIFY)
    assert [s.status for s in scored] == ["correct"] * len(NEEDS_MATH_VERIFY)
    assert marker.exists()
    assert _events(verifier) == (1.0, 0.0)  # one death, no answer had to be retried


def test_a_worker_killed_while_idle_is_replaced_before_the_next_call(verifier):
    assert _score(verifier, NEEDS_MATH_VERIFY[:1])[0].reward == 1.0
    victim, survivor = verifier.pool.pids
    os.kill(victim, signal.SIGKILL)
    _wait_for(lambda: not _alive(victim), "the killed worker to exit")
    scored = _score(verifier, NEEDS_MATH_VERIFY)
    assert [s.reward for s in scored] == [1.0] * len(NEEDS_MATH_VERIFY)
    assert verifier.metrics()["reward/error"] == 0.0
    assert _events(verifier) == (1.0, 0.0)
    assert victim not in verifier.pool.pids and survivor in verifier.pool.pids


@pytest.mark.parametrize("wait_until_gone", [False, True], ids=["eof-mid-answer", "broken-pipe-on-send"])
def test_a_worker_that_dies_with_an_answer_in_flight_is_replaced_and_the_answer_retried(
    verifier, monkeypatch, wait_until_gone
):
    _score(verifier, NEEDS_MATH_VERIFY[:1])  # workers ready
    first = []
    killed = _kill_on_write(verifier, monkeypatch, lambda data: not first and not first.append(data), wait_until_gone)
    scored = _score(verifier, NEEDS_MATH_VERIFY)
    assert len(killed) == 1 and killed[0] not in verifier.pool.pids
    assert [s.status for s in scored] == ["correct"] * len(NEEDS_MATH_VERIFY)
    assert _events(verifier) == (1.0, 1.0)


def test_an_answer_whose_worker_dies_twice_scores_error_and_the_rest_still_verify(verifier, monkeypatch):
    _score(verifier, NEEDS_MATH_VERIFY[:1])
    killed = _kill_on_write(verifier, monkeypatch, lambda data: b"(x+1)^2" in data)
    scored = _score(verifier, NEEDS_MATH_VERIFY)
    assert [(s.reward, s.status) for s in scored] == [(1.0, "correct"), (0.0, "error"), (1.0, "correct")]
    assert len(killed) == 2
    metrics = verifier.metrics()
    assert (metrics["reward/worker_deaths"], metrics["reward/retries"], metrics["reward/error"]) == (2.0, 1.0, 1.0)
    monkeypatch.undo()
    assert _score(verifier, NEEDS_MATH_VERIFY[1:2])[0].reward == 1.0  # the same answer, healthy workers


def test_a_retried_answer_that_then_times_out_scores_timeout_and_is_not_retried_again(monkeypatch):
    v = MathVerifier(workers=1, timeout=1.0)
    try:
        _score(v, NEEDS_MATH_VERIFY[:1])
        first = []
        _kill_on_write(v, monkeypatch, lambda data: not first and not first.append(data))
        (scored,) = v.score([r"\boxed{10^{10^{10^{10}}}}"], ["1"])
        assert (scored.reward, scored.status) == (0.0, "timeout")
        metrics = v.metrics()
        assert (metrics["reward/worker_deaths"], metrics["reward/retries"], metrics["reward/timeout"]) == (1, 1, 1)
    finally:
        v.close()


def test_a_stopped_worker_costs_no_reward_its_answer_is_retried_on_a_fresh_worker(monkeypatch):
    v = MathVerifier(workers=1, timeout=1.0)
    try:
        _score(v, NEEDS_MATH_VERIFY[:1])
        real_write, stopped = v.pool._write, []

        def write(worker, data: bytes) -> None:
            if not stopped:  # the first request goes to a worker that is stopped (SIGSTOP), not killed
                stopped.append(worker.process.pid)
                os.kill(worker.process.pid, signal.SIGSTOP)
            return real_write(worker, data)

        monkeypatch.setattr(v.pool, "_write", write)
        scored = _score(v, NEEDS_MATH_VERIFY[1:2])
        assert [(s.reward, s.status) for s in scored] == [(1.0, "correct")]  # retried, not scored as a timeout
        metrics = v.metrics()
        assert (metrics["reward/retries"], metrics["reward/timeout"], metrics["reward/worker_deaths"]) == (1, 0, 0)
        assert not _alive(stopped[0]) and stopped[0] not in v.pool.pids  # killed (SIGKILL ends a stopped process)
    finally:
        v.close()


def test_math_verify_missing_raises_one_error_naming_the_cause_and_leaves_no_process(tmp_path, monkeypatch):
    # A sitecustomize that makes `import math_verify` fail in the workers only (they get PYTHONPATH).
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\n"
        "class _HideMathVerify:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'math_verify':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, _HideMathVerify())\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    before = _worker_children()
    v = MathVerifier(workers=2)
    try:
        # Raised at the first score, even though this batch needs no math-verify (the fast path decides it).
        with pytest.raises(WorkerStartError, match=r"No module named 'math_verify'"):
            v.score([r"\boxed{4}"], ["4"])
        assert v.pool.pids == []
        assert _worker_children() - before == set()
    finally:
        v.close()


def test_workers_that_keep_dying_at_start_up_raise_with_their_stderr_and_leave_no_process():
    before = _worker_children()
    v = MathVerifier(workers=2)
    v.pool.command = [sys.executable, "-c", "import sys; sys.exit('dgpo.rewards.worker: no such luck')"]
    try:
        with pytest.raises(WorkerStartError, match=r"(?s)3 start-ups in a row failed.*no such luck") as raised:
            v.score([r"\boxed{\sqrt{8}}"], [r"2\sqrt{2}"])
        assert "status 1" in str(raised.value)
        assert v.pool.pids == []
        assert _worker_children() - before == set()
    finally:
        v.close()


def test_workers_that_never_get_ready_are_replaced_then_raise_with_their_stderr_and_leave_no_process():
    before = _worker_children()
    pool = VerifierPool(workers=1, start_timeout=1.0, max_start_failures=2)
    # Never reports ready (the argument names dgpo.rewards.worker so that _worker_children finds it).
    code = "import sys, time; print('still importing', file=sys.stderr, flush=True); time.sleep(60)"
    pool.command = [sys.executable, "-c", code, "dgpo.rewards.worker"]
    try:
        with pytest.raises(WorkerStartError, match=r"(?s)did not start within 1 s \(2 start-ups.*still importing"):
            pool.start()
        assert pool.take_counts() == {"worker_deaths": 1, "retries": 0}  # the first was replaced, the second raised
        assert pool.pids == []
        assert _worker_children() - before == set()
    finally:
        pool.close()


def test_close_leaves_no_worker_behind(verifier):
    _score(verifier, NEEDS_MATH_VERIFY[:1])
    pids = verifier.pool.pids
    assert len(pids) == 2 and all(_alive(pid) for pid in pids)
    verifier.close()
    assert not [pid for pid in pids if _alive(pid)]
    assert _score(verifier, NEEDS_MATH_VERIFY[:1])[0].reward == 1.0  # a closed verifier starts again on use


def test_workers_started_from_a_short_lived_thread_outlive_it(verifier):
    # PR_SET_PDEATHSIG fires when the *thread* that forked a worker ends: the pool forks from its own thread.
    thread = threading.Thread(target=_score, args=(verifier, NEEDS_MATH_VERIFY[:1]))
    thread.start()
    thread.join()
    pids = verifier.pool.pids
    with pytest.raises(AssertionError, match="timed out"):  # a second in which nothing may die
        _wait_for(lambda: not all(_alive(pid) for pid in pids), "a worker to die", timeout=1.0)
    assert [s.reward for s in _score(verifier, NEEDS_MATH_VERIFY)] == [1.0] * len(NEEDS_MATH_VERIFY)
    assert _events(verifier) == (0.0, 0.0) and verifier.pool.pids == pids


def test_metrics_report_the_pool_events_and_reset_them(verifier):
    _score(verifier, NEEDS_MATH_VERIFY[:1])
    os.kill(verifier.pool.pids[0], signal.SIGKILL)
    _score(verifier, NEEDS_MATH_VERIFY[:1])
    metrics = verifier.metrics(reset=True)
    assert {"reward/worker_deaths", "reward/retries", "reward/timeout", "reward/error"} <= metrics.keys()
    assert metrics["reward/worker_deaths"] == 1.0  # found dead before the send, or at its end of file
    assert set(verifier.metrics().values()) == {0.0}
