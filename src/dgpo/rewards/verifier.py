"""The math reward: extract the final boxed answer, compare it with the gold answer, score 1.0 or 0.0.

Order of work per completion: extraction (a linear scan) → the cheap fast path (:mod:`.fast_path`) → math-verify
in killable worker processes (:mod:`.pool`) only for what the fast path cannot decide. Nothing here raises for
a bad completion or a worker failure: a missing answer, a timeout, a parser error or a worker that died twice on
the same answer scores 0 and is counted. The one exception is a verifier that cannot verify at all (math-verify
missing, workers that cannot start): :class:`~dgpo.rewards.pool.WorkerStartError` at the first ``score`` call,
which starts the workers whether or not that batch needs math-verify — so a broken set-up stops a run at its
first reward, not at the first answer the fast path cannot decide.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dgpo.rewards.extract import completion_text, extract_answer
from dgpo.rewards.fast_path import fast_equal
from dgpo.rewards.pool import DEFAULT_TIMEOUT, DEFAULT_WORKERS, VerifierPool

#: Status of one scored completion. Only "correct" earns reward.
STATUSES = ("correct", "incorrect", "no_answer", "too_long", "timeout", "error", "invalid")


@dataclass(frozen=True)
class ScoredAnswer:
    reward: float
    status: str
    pred: str | None
    fast_path: bool


class MathVerifier:
    """Scores completions against gold answers.

    Args:
        workers: math-verify worker processes (default :data:`DEFAULT_WORKERS`).
        timeout: seconds allowed per answer before its worker is killed (default :data:`DEFAULT_TIMEOUT`).
        fallback: answer extraction when there is no box: None (default, score 0) or ``"answer_is"``.
        max_answer_chars: longer extracted answers score 0 without verification (status ``too_long``).
    """

    def __init__(
        self,
        workers: int = DEFAULT_WORKERS,
        timeout: float = DEFAULT_TIMEOUT,
        fallback: str | None = None,
        max_answer_chars=1000,
    ):
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        if fallback not in (None, "answer_is"):
            raise ValueError(f"unknown answer fallback {fallback!r}; valid fallbacks: answer_is, None")
        self.timeout = timeout
        self.fallback = fallback
        self.max_answer_chars = max_answer_chars
        self.pool = VerifierPool(workers)
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._started = False

    def score(self, completions: Sequence[Any], answers: Sequence[str]) -> list[ScoredAnswer]:
        """One :class:`ScoredAnswer` per completion (same order)."""
        if len(completions) != len(answers):
            raise ValueError(f"got {len(completions)} completions but {len(answers)} answers")
        if not self._started:
            self.pool.start()  # raises WorkerStartError now if verification is impossible (see the module doc)
            self._started = True
        results: list[ScoredAnswer | None] = [None] * len(completions)
        to_verify: list[int] = []
        preds: list[str | None] = []
        for i, (completion, answer) in enumerate(zip(completions, answers, strict=True)):
            text = completion_text(completion)
            pred = None if text is None else extract_answer(text, self.fallback)
            preds.append(pred)
            if text is None:  # not text at all (None, bytes, a number): scored 0, never raised
                results[i] = ScoredAnswer(0.0, "invalid", None, False)
            elif pred is None or not pred.strip():
                results[i] = ScoredAnswer(0.0, "no_answer", pred, False)
            elif len(pred) > self.max_answer_chars:
                results[i] = ScoredAnswer(0.0, "too_long", pred[:200], False)
            else:
                decided = fast_equal(str(answer), pred)
                if decided is None:
                    to_verify.append(i)
                else:
                    results[i] = ScoredAnswer(float(decided), "correct" if decided else "incorrect", pred, True)
        verdicts = self.pool.verify_many([(str(answers[i]), preds[i]) for i in to_verify], self.timeout)
        for i, verdict in zip(to_verify, verdicts, strict=True):
            results[i] = ScoredAnswer(float(verdict == "correct"), verdict, preds[i], False)
        with self._lock:
            self.counts.update(r.status for r in results)
            self.counts.update(fast_path=sum(r.fast_path for r in results), scored=len(results))
        return results

    def metrics(self, reset: bool = False) -> dict[str, float]:
        """Cumulative counts as ``reward/<status>``, ``reward/fast_path``, ``reward/scored`` and the pool's events
        (``reward/worker_deaths``, ``reward/retries``): docs/metrics.md."""
        with self._lock:
            out = {f"reward/{key}": float(self.counts.get(key, 0)) for key in (*STATUSES, "fast_path", "scored")}
            if reset:
                self.counts.clear()
        out.update({f"reward/{key}": float(n) for key, n in self.pool.take_counts(reset).items()})
        return out

    def close(self) -> None:
        """Stop the workers (a later ``score`` starts new ones)."""
        self.pool.close()
        self._started = False


class MathReward(MathVerifier):
    """A TRL reward function: ``reward(completions, answer, **kwargs) -> list[float]``.

    TRL passes the dataset's ``answer`` column as a keyword; conversational completions are accepted.
    """

    __name__ = "math_reward"  # TRL names each reward function's logged mean after ``__name__``

    def __call__(self, completions: Sequence[Any], answer: Sequence[str], **kwargs: Any) -> list[float]:
        return [scored.reward for scored in self.score(completions, answer)]

    def score_rows(self, completions: Sequence[Any], rows: Sequence[dict]) -> list[float]:
        """Rewards of completions against problem rows holding ``answer`` (held-out evaluation; the interface
        :func:`dgpo.eval.held_out.evaluate_rows` scores with, shared with ``CountdownReward``)."""
        return self(completions, [row["answer"] for row in rows])


_default: MathVerifier | None = None
_default_lock = threading.Lock()


def default_verifier() -> MathVerifier:
    """A process-wide verifier (default workers and timeout), created on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = MathVerifier()
        return _default


def math_reward(completion: str, answer: str) -> float:
    """1.0 when the last boxed answer of ``completion`` equals ``answer`` (math-verify), else 0.0."""
    return default_verifier().score([completion], [answer])[0].reward


def compute_score(data_source: str, solution_str: str, ground_truth: str, extra_info: Any = None, **kwargs: Any):
    """verl's custom reward hook (``custom_reward_function.path`` → this module, ``name=compute_score``)."""
    return math_reward(solution_str, ground_truth)
