"""Shipped benchmarks, prompts, training-set loading and the tiny local model."""

from __future__ import annotations

import json

import pytest

from dgpo.data import BENCHMARKS, R1_TEMPLATE, build_prompt, format_problem, load_benchmark, load_train_set
from dgpo.tiny import load_tokenizer

SIZES = {"aime24": 30, "aime25": 30, "amc23": 40, "math500": 500, "minerva_math": 272, "olympiadbench": 675}


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_shipped_benchmarks_load_with_the_documented_sizes(name):
    rows = load_benchmark(name)
    assert len(rows) == SIZES[name]
    assert all(set(r) == {"id", "problem", "answer"} and r["answer"] and r["problem"] for r in rows)
    assert len({r["id"] for r in rows}) == len(rows)


def test_known_answers_and_unknown_benchmark():
    assert load_benchmark("aime24")[0]["answer"] == "204"  # Aya's walk (data README)
    assert load_benchmark("math500")[0]["answer"] == r"\left( 3, \frac{\pi}{2} \right)"
    with pytest.raises(ValueError, match="unknown benchmark 'gsm8k'; valid benchmarks: aime24, aime25"):
        load_benchmark("gsm8k")


def test_prompt_goes_through_the_chat_template(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    prompt = build_prompt(tokenizer, "What is 2 + 2?")
    assert prompt == (
        "<|im_start|>user\nWhat is 2 + 2?\nPlease reason step by step, and put your final answer within "
        "\\boxed{}.<|im_end|>\n<|im_start|>assistant\n"
    )
    assert format_problem("Q", "Solve: {problem}") == "Solve: Q"
    with pytest.raises(ValueError, match=r"must contain '\{problem\}'"):
        format_problem("Q", "no placeholder")

    class Plain:
        chat_template = None

    assert build_prompt(Plain(), "Q") == R1_TEMPLATE.format(problem="Q")


def test_tiny_tokenizer_splits_digits_and_model_generates(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(tiny_model_dir)
    assert tokenizer.tokenize("12345") == ["1", "2", "3", "4", "5"]
    assert tokenizer.padding_side == "left" and tokenizer.pad_token == "<|endoftext|>"
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert model.config.hidden_size == 128 and model.config.num_hidden_layers == 2
    ids = tokenizer(["1 + 1 ="], return_tensors="pt")
    out = model.generate(
        **ids, max_new_tokens=3, min_new_tokens=3, do_sample=False, pad_token_id=tokenizer.pad_token_id
    )
    assert out.shape == (1, ids["input_ids"].shape[1] + 3)
    assert torch.equal(out[0, : ids["input_ids"].shape[1]], ids["input_ids"][0])


def test_load_train_set_local_files(tmp_path):
    rows = [
        {"problem": "1+1?", "answer": "2", "id": "a"},
        {"problem": "x?", "answer": ""},
        {"problem": "3", "answer": 3},
    ]
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    loaded = load_train_set(str(path))
    assert [r["answer"] for r in loaded] == ["2", "3"]  # the empty answer is dropped, numbers become strings

    import pandas as pd

    pd.DataFrame(rows[:1]).to_parquet(tmp_path / "train.parquet")
    assert load_train_set(str(tmp_path / "train.parquet"))[0]["problem"] == "1+1?"

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q", "answer": "1"}) + "\n")
    with pytest.raises(ValueError, match="lacks field\\(s\\) problem; found: question, answer"):
        load_train_set(str(bad))
    with pytest.raises(FileNotFoundError, match="training set file not found"):
        load_train_set(str(tmp_path / "missing.jsonl"))
