"""Evaluate a loaded model on in-memory rows (``id``, ``problem`` and the columns its reward reads): used before
and after RL training."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict

from dgpo.data.prompts import R1_TEMPLATE
from dgpo.eval.backends import HFBackend, SamplingSettings, generate_rows
from dgpo.eval.passk import summarize_benchmark


def evaluate_rows(
    model,
    tokenizer,
    rows: list[dict],
    reward,
    k: int = 1,
    settings: SamplingSettings | None = None,
    template: str = R1_TEMPLATE,
    batch_size: int = 128,
    seed: int = 0,
) -> dict:
    """Avg@k and Pass@k' over ``rows`` (greedy when ``settings.temperature == 0``, then use k = 1).

    ``reward`` scores the completions: any object with ``score_rows(completions, rows) -> list[float]``, the
    interface of both task rewards (:class:`dgpo.rewards.MathReward` against each row's ``answer``,
    :class:`dgpo.rewards.CountdownReward` against its ``numbers`` and ``target``); 1.0 counts as correct.
    The result also holds the completions' token lengths: ``length_median`` and ``length_p90``.
    """
    settings = settings or SamplingSettings(temperature=0.0, top_p=1.0, max_new_tokens=64)
    backend = HFBackend.from_model(model, tokenizer, batch_size)
    units = [(row, index) for row in rows for index in range(k)]
    correct: dict[str, list[bool]] = defaultdict(list)
    lengths: list[int] = []
    for start in range(0, len(units), batch_size):
        batch = [row for row, _ in units[start : start + batch_size]]
        generations = generate_rows(backend, batch, template, settings, [seed + start + i for i in range(len(batch))])
        rewards = reward.score_rows([g.text for g in generations], batch)
        lengths += [g.tokens for g in generations]
        for row, value in zip(batch, rewards, strict=True):
            correct[row["id"]].append(value == 1.0)
    lengths.sort()
    return {
        **summarize_benchmark(correct, k),
        "length_median": statistics.median(lengths) if lengths else None,
        "length_p90": lengths[max(0, math.ceil(0.9 * len(lengths)) - 1)] if lengths else None,
    }
