"""Verifier throughput (2 workers), against raw math-verify in one process measured in the same run.

* MATH500 gold: each full gold ``solution`` scored against its ``answer`` (answers/s), and MATH500 × 32 samples.
* Non-identical pairs: the 1,150 ``math_train`` rows whose ``answer`` and ``answer_normalized`` differ (pairs/s and
  acceptance), with the fast path (dgpo), without it (math-verify only, in the workers), and raw in-process.
* Pairs that need math-verify: 2,000 non-identical (gold, prediction) pairs the fast path cannot decide — the
  non-identical ``math_train`` pairs it defers, then each gold against the next row's answer — through the whole
  verifier (the throughput of a batch whose every answer reaches a worker), and raw in-process.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from dgpo.data import load_benchmark
from dgpo.rewards import MathVerifier, fast_equal

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def raw_math_verify(pairs: list[tuple[str, str]]) -> float:
    from math_verify import parse, verify

    accepted = 0
    for gold, pred in pairs:
        accepted += bool(verify(parse(f"${gold}$"), parse(f"${pred}$")))
    return accepted / len(pairs)


def pairs_needing_math_verify(data: list[dict], count: int = 2000) -> list[tuple[str, str]]:
    """``count`` distinct, non-identical (gold, pred) pairs that :func:`fast_equal` leaves to math-verify: the
    rows' own (answer, answer_normalized) pairs first, then each answer against the next row's (mostly different
    values, as wrong samples are)."""
    answers = [(r["answer"], r["answer_normalized"]) for r in data if r["answer"] and r["answer_normalized"]]
    candidates = answers + [(gold, answers[(i + 1) % len(answers)][1]) for i, (gold, _) in enumerate(answers)]
    chosen: dict[tuple[str, str], None] = {}
    for gold, pred in candidates:
        if gold.strip() != pred.strip() and fast_equal(gold, pred) is None:
            chosen.setdefault((gold, pred))
            if len(chosen) == count:
                break
    return list(chosen)


def run() -> dict:
    math500 = [json.loads(line) for line in (SHARED / "math500.jsonl").open()] if SHARED.exists() else None
    rows = math500 or [dict(r, solution=f"\\boxed{{{r['answer']}}}") for r in load_benchmark("math500")]
    verifier = MathVerifier(workers=2)
    verifier.score([r"\boxed{\sqrt{2}}"], ["1"])  # start the workers outside the timings
    results: dict = {}

    completions, answers = [r["solution"] for r in rows], [r["answer"] for r in rows]
    scored, seconds = _timed(lambda: verifier.score(completions, answers))
    results["math500_gold"] = {"answers": len(rows), "seconds": seconds, "per_s": len(rows) / seconds,
                               "accepted": sum(s.reward for s in scored) / len(rows)}  # fmt: skip
    _, seconds = _timed(lambda: verifier.score(completions * 32, answers * 32))
    results["math500_x32"] = {"answers": 32 * len(rows), "seconds": seconds}

    train = SHARED / "math_train.jsonl"
    if train.exists():
        data = [json.loads(line) for line in train.open()]
        pairs = [
            (r["answer"], r["answer_normalized"]) for r in data if r["answer"] and r["answer"] != r["answer_normalized"]
        ]
        scored, seconds = _timed(lambda: verifier.score([f"\\boxed{{{p}}}" for _, p in pairs], [g for g, _ in pairs]))
        results["pairs_fast_path"] = {"pairs": len(pairs), "per_s": len(pairs) / seconds,
                                      "accepted": sum(s.reward for s in scored) / len(pairs)}  # fmt: skip
        verdicts, seconds = _timed(lambda: verifier.pool.verify_many(pairs, verifier.timeout))
        results["pairs_workers_only"] = {"pairs": len(pairs), "per_s": len(pairs) / seconds,
                                         "accepted": verdicts.count("correct") / len(pairs)}  # fmt: skip
        accepted, seconds = _timed(lambda: raw_math_verify(pairs))
        results["pairs_raw_one_process"] = {"pairs": len(pairs), "per_s": len(pairs) / seconds, "accepted": accepted}
        hard = pairs_needing_math_verify(data)
        scored, seconds = _timed(lambda: verifier.score([f"\\boxed{{{p}}}" for _, p in hard], [g for g, _ in hard]))
        results["hard_pairs"] = {"pairs": len(hard), "per_s": len(hard) / seconds,
                                 "accepted": sum(s.reward for s in scored) / len(hard)}  # fmt: skip
        accepted, seconds = _timed(lambda: raw_math_verify(hard))
        results["hard_pairs_raw_one_process"] = {"pairs": len(hard), "per_s": len(hard) / seconds, "accepted": accepted}
    verifier.close()
    return results
