"""Stricter is not blunter: the reward still accepts the MATH training answers in their other spelling.

``math_train.jsonl`` carries each answer twice: ``answer`` (the boxed LaTeX of the solution) and
``answer_normalized`` (the same value after a Hendrycks-style normalisation: units, ``\\left``, ``\\!`` dropped...).
Every pair is the same value by construction, so every rejection is a false negative. On the full file the
verifier accepts 7,389 of the 7,498 pairs with a non-empty answer (98.5%), and 1,041 of the 1,150 pairs whose two
strings differ (90.5%; raw math-verify: 88.9%; the rejections are mostly matrices that the normalisation broke:
``\\\\`` became ``\\``). This test scores a fixed sample of the differing pairs, the informative ones (an identical
pair is accepted as the same string), with a threshold a few points below the rate measured on that sample (89.3%).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from dgpo.rewards import MathVerifier

TRAIN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "math_train.jsonl"
SAMPLE, SEED = 300, 0
THRESHOLD = 0.86


@pytest.mark.skipif(not TRAIN.exists(), reason=f"needs the shared data beside the clone: {TRAIN} is missing")
@pytest.mark.slow
def test_answer_normalized_is_accepted_against_answer_on_a_fixed_sample():
    rows = [json.loads(line) for line in TRAIN.open()]
    pairs = [(r["answer"], r["answer_normalized"]) for r in rows if r["answer"]]
    pairs = [(gold, pred) for gold, pred in pairs if gold != pred]
    sample = random.Random(SEED).sample(pairs, SAMPLE)
    verifier = MathVerifier(workers=1, timeout=5.0)
    try:
        scored = verifier.score([f"\\boxed{{{pred}}}" for _, pred in sample], [gold for gold, _ in sample])
    finally:
        verifier.close()
    rate = sum(s.reward for s in scored) / SAMPLE
    rejected = [(gold, s.pred, s.status) for (gold, _), s in zip(sample, scored, strict=True) if not s.reward]
    assert rate >= THRESHOLD, (rate, rejected)
