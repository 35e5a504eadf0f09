"""The CPU end-to-end task for verl: single-digit a + b in the chat template, a tiny Qwen2, a partial-credit reward.

``python -m dgpo.integrations.verl_cpu.task DIR`` writes, when missing, ``DIR/model`` (a random tiny Qwen2 and its
tokenizer, :func:`dgpo.tiny.build_tiny_model`), ``DIR/train.parquet`` and ``DIR/val.parquet`` in verl's RL format
(``prompt`` messages, ``reward_model.ground_truth``), and prints nothing else. The reward is :func:`compute_score`
(``reward.custom_reward_function.path`` = this file).

The model starts random, so an exact-match reward would be 0 for every sample and GRPO would have no signal; the
partial credit gives each digit in the right place a share, so the first steps already rank samples.
"""

from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path
from typing import Any

DATA_SOURCE = "dgpo_cpu_addition"
MAX_OPERAND = 9


def prompt(a: int, b: int) -> str:
    return f"{a}+{b}="


def compute_score(data_source: str, solution_str: str, ground_truth: str, extra_info: Any = None, **kwargs) -> float:
    """verl's custom reward: 1.0 for exactly ``ground_truth`` (surrounding spaces ignored), else partial credit.

    ``score = 0.5 · min(#digits in the answer, len(truth)) / max(len(answer), len(truth))`` for any other answer:
    digits earn credit, and so does stopping at the truth's length, but only the exact answer reaches 1 (any other
    string scores ≤ 0.5). Never raises: an answer or truth that is not a string scores 0.
    """
    if not isinstance(solution_str, str) or not isinstance(ground_truth, str) or not ground_truth:
        return 0.0
    answer = solution_str.strip()
    if answer == ground_truth:
        return 1.0
    digits = sum(char in "0123456789" for char in answer)
    return 0.5 * min(digits, len(ground_truth)) / max(len(answer), len(ground_truth))


def rows(count: int, seed: int, split: str) -> list[dict]:
    """``count`` problems a + b with a, b in 0..9, in verl's RL parquet schema."""
    rng = random.Random(seed)
    out = []
    for index in range(count):
        a, b = rng.randint(0, MAX_OPERAND), rng.randint(0, MAX_OPERAND)
        out.append(
            {
                "data_source": DATA_SOURCE,
                "prompt": [{"role": "user", "content": prompt(a, b)}],
                "ability": "arithmetic",
                "reward_model": {"style": "rule", "ground_truth": str(a + b)},
                "extra_info": {"index": index, "split": split},
            }
        )
    return out


def warm_start(model_dir: Path, steps: int, seed: int) -> None:
    """A few supervised steps on "a+b=" → "a+b<EOS>" (all 100 problems), saved in place.

    Just enough that samples hold digits and some end on EOS: GRPO gets mixed groups from the first step, the
    batch holds responses that stop on EOS beside ones cut at the length limit, and the reward still has room.
    (A plain loop: dgpo.train's warm start lives above the integrations and needs TRL's environment.)
    """
    import torch
    from transformers import AutoModelForCausalLM

    from dgpo.tiny import load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    pairs = [(a, b) for a in range(MAX_OPERAND + 1) for b in range(MAX_OPERAND + 1)]
    examples = []
    for a, b in pairs:
        messages = [{"role": "user", "content": prompt(a, b)}]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        context = tokenizer(text, add_special_tokens=False)["input_ids"]
        answer = tokenizer(f"{a + b}{tokenizer.eos_token}", add_special_tokens=False)["input_ids"]
        examples.append((torch.tensor(context + answer), len(context)))
    # one fixed batch of all 100 problems: built once, trained on every step
    ids = torch.nn.utils.rnn.pad_sequence([e[0] for e in examples], batch_first=True, padding_value=-100)
    labels = ids.clone()
    for row, (_, context_len) in enumerate(examples):
        labels[row, :context_len] = -100  # the loss is on the answer and its EOS only
    input_ids, attention_mask = ids.clamp(min=0), (ids >= 0).long()
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    model.save_pretrained(model_dir)


def prepare(
    out_dir: str | Path, train_rows: int = 512, val_rows: int = 32, seed: int = 0, warm_start_steps: int = 10
) -> Path:
    """Write what is missing of the model and the two parquet files into ``out_dir``; return ``out_dir``."""
    import pandas as pd

    from dgpo.tiny import MARKER, build_tiny_model

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "model" / MARKER).is_file():
        corpus = [f"{prompt(a, b)}{a + b}" for a in range(MAX_OPERAND + 1) for b in range(MAX_OPERAND + 1)]
        partial = out / "model.partial"
        shutil.rmtree(partial, ignore_errors=True)
        build_tiny_model(partial, corpus=corpus, seed=seed, vocab_size=300, hidden_size=64, layers=2)
        warm_start(partial, warm_start_steps, seed)
        partial.rename(out / "model")  # a kill mid-build never leaves a half model under the real name
    for name, count, split_seed in (("train", train_rows, seed), ("val", val_rows, seed + 1)):
        path = out / f"{name}.parquet"
        if not path.is_file():
            partial = path.with_suffix(".parquet.partial")
            pd.DataFrame(rows(count, split_seed, name)).to_parquet(partial)
            partial.rename(path)  # a kill mid-write never leaves a half file under the real name
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path, help="folder for model/, train.parquet and val.parquet")
    prepare(parser.parse_args().out_dir)


if __name__ == "__main__":
    main()
