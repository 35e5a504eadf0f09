"""The rewards. Math (docs/design.md §7): last ``\\boxed{}`` answer, fast path, then math-verify in killable workers.
Countdown: last ``<answer>…</answer>``, parsed and evaluated exactly (:mod:`dgpo.rewards.countdown`)."""

from dgpo.rewards.countdown import CountdownReward, countdown_reward
from dgpo.rewards.extract import extract_answer, extract_boxed
from dgpo.rewards.fast_path import fast_equal, normalize
from dgpo.rewards.pool import VerifierPool, WorkerStartError
from dgpo.rewards.verifier import (
    STATUSES,
    MathReward,
    MathVerifier,
    ScoredAnswer,
    compute_score,
    default_verifier,
    math_reward,
)

__all__ = [
    "STATUSES",
    "CountdownReward",
    "MathReward",
    "MathVerifier",
    "ScoredAnswer",
    "VerifierPool",
    "WorkerStartError",
    "compute_score",
    "countdown_reward",
    "default_verifier",
    "extract_answer",
    "extract_boxed",
    "fast_equal",
    "math_reward",
    "normalize",
]
