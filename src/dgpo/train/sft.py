"""A short supervised warm-start: teach the format (and part of the skill) before RL.

A random model scores 0 and GRPO gets no signal; a few hundred steps of next-token loss on worked solutions give
it a partial skill, so sampled groups have mixed outcomes. A plain loop (cleanrl style) rather than TRL's
SFTTrainer: it is 30 lines, has no dataset plumbing, and is deterministic under a seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import torch

from dgpo.data.prompts import build_prompt


def encode_examples(tokenizer, rows: list[dict], template: str) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, completion ids + EOS) per row; the loss is on the completion only."""
    examples = []
    for row in rows:
        prompt = tokenizer(build_prompt(tokenizer, row["problem"], template), add_special_tokens=False)["input_ids"]
        completion = tokenizer(row["solution"] + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        examples.append((prompt, completion))
    return examples


def collate(examples: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    length = max(len(p) + len(c) for p, c in examples)
    input_ids = torch.full((len(examples), length), pad_id)
    labels = torch.full((len(examples), length), -100)
    attention = torch.zeros((len(examples), length), dtype=torch.long)
    for i, (prompt, completion) in enumerate(examples):
        ids = prompt + completion
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, len(prompt) : len(ids)] = torch.tensor(completion)
        attention[i, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def supervised_warm_start(
    model,
    tokenizer,
    rows: list[dict],
    template: str,
    steps: int,
    learning_rate: float,
    batch_size: int,
    seed: int,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train ``model`` in place for ``steps`` AdamW steps (linear warm-up over 20); returns the losses."""
    examples = encode_examples(tokenizer, rows, template)
    rng = random.Random(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 20))
    model.train()
    losses = []
    for step in range(steps):
        batch = collate(rng.sample(examples, min(batch_size, len(examples))), tokenizer.pad_token_id)
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if on_step is not None:
            on_step(step, losses[-1])
    return losses
