"""Evaluate a loaded model on in-memory rows (``id, problem, answer``): used before and after RL training."""

from __future__ import annotations

from collections import defaultdict

from dgpo.data.prompts import R1_TEMPLATE
from dgpo.eval.backends import HFBackend, SamplingSettings, sample_and_score
from dgpo.eval.passk import summarize_benchmark
from dgpo.rewards.verifier import MathVerifier


def evaluate_rows(
    model,
    tokenizer,
    rows: list[dict],
    k: int = 1,
    settings: SamplingSettings | None = None,
    template: str = R1_TEMPLATE,
    batch_size: int = 128,
    seed: int = 0,
    verifier: MathVerifier | None = None,
) -> dict:
    """Avg@k and Pass@k' over ``rows`` (greedy when ``settings.temperature == 0``, then use k = 1)."""
    settings = settings or SamplingSettings(temperature=0.0, max_new_tokens=64)
    backend = HFBackend.from_model(model, tokenizer, batch_size)
    own_verifier = verifier is None
    verifier = verifier or MathVerifier(workers=1)
    units = [(row, index) for row in rows for index in range(k)]
    correct: dict[str, list[bool]] = defaultdict(list)
    try:
        for start in range(0, len(units), batch_size):
            batch = units[start : start + batch_size]
            seeds = [seed + start + i for i in range(len(batch))]
            _, scored = sample_and_score(backend, verifier, [row for row, _ in batch], template, settings, seeds)
            for (row, _), result in zip(batch, scored, strict=True):
                correct[row["id"]].append(result.reward == 1.0)
    finally:
        if own_verifier:
            verifier.close()
    return summarize_benchmark(correct, k)
