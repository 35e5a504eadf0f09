"""The pieces of the CPU shim on their own: the a + b reward, the hf_cpu sampler, the launcher's override merge."""

from __future__ import annotations

import pytest
import torch

from dgpo.integrations.verl_cpu.launch import UserError, merge, override_key
from dgpo.integrations.verl_cpu.rollout import _truncate, sample
from dgpo.integrations.verl_cpu.task import compute_score, rows

SCORES = [
    # (answer, truth, score): 1 only for the exact sum; digits and the right length earn partial credit
    ("12", "12", 1.0),
    ("  12 \n", "12", 1.0),
    ("21", "12", 0.5),  # two digits, the truth's length: 0.5·2/2
    ("1", "12", 0.25),  # one digit of two: 0.5·1/2
    ("12345678", "12", 0.125),  # eight digits where two are due: 0.5·2/8
    ("abc", "7", 0.0),
    ("", "7", 0.0),
    ("٧", "7", 0.0),  # an Arabic-Indic seven is not the ASCII digit
    ("7.0", "7", 0.5 * 1 / 3),  # not the exact string: partial only
    ("x" * 100_000 + "7", "7", 0.5 * 1 / 100_001),
    (None, "7", 0.0),
    (b"7", "7", 0.0),
    (7, "7", 0.0),
    ("7", None, 0.0),
    ("7", "", 0.0),
]


@pytest.mark.parametrize(("answer", "truth", "score"), SCORES)
def test_reward_is_exact_only_for_the_sum_and_never_raises(answer, truth, score):
    assert compute_score("dgpo_cpu_addition", answer, truth) == pytest.approx(score, abs=1e-12)


def test_task_rows_are_verl_rows_with_the_true_sum():
    for row in rows(50, seed=3, split="train"):
        a, b = row["prompt"][0]["content"].removesuffix("=").split("+")
        assert row["reward_model"]["ground_truth"] == str(int(a) + int(b))
        assert compute_score(row["data_source"], row["reward_model"]["ground_truth"], str(int(a) + int(b))) == 1.0


def test_truncate_keeps_the_top_k_and_the_smallest_nucleus_over_p():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    assert torch.isfinite(_truncate(logits, top_k=2, top_p=1.0)).tolist() == [True, True, False, False]
    # p = 0.7: 0.5 alone is below it, 0.5 + 0.3 crosses it, so the nucleus is the first two tokens
    assert torch.isfinite(_truncate(logits, top_k=-1, top_p=0.7)).tolist() == [True, True, False, False]
    assert torch.isfinite(_truncate(logits, top_k=-1, top_p=0.5)).tolist() == [True, False, False, False]
    assert torch.isfinite(_truncate(logits, top_k=0, top_p=1.0)).all()


class Scripted(torch.nn.Module):
    """A stand-in causal LM: the logits for the next token are a fixed table indexed by the step."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = table

    def forward(self, input_ids, past_key_values=None, use_cache=True):
        step = 0 if past_key_values is None else past_key_values + 1
        logits = self.table[min(step, len(self.table) - 1)].expand(1, input_ids.shape[1], -1)
        return type("Out", (), {"logits": logits, "past_key_values": step})()


def test_sample_returns_the_sampling_distributions_log_probs_and_stops_on_eos():
    eos = 3
    table = torch.tensor([[4.0, 0.0, 0.0, -9.0], [0.0, 5.0, 0.0, -9.0], [-9.0, -9.0, -9.0, 9.0]])
    tokens, log_probs, stopped = sample(Scripted(table), [1, 2], 8, {"temperature": 0.0}, {eos})
    assert tokens == [0, 1, eos] and stopped  # greedy: argmax of each row, then EOS ends it
    want = [torch.log_softmax(row, -1)[token] for row, token in zip(table, tokens, strict=True)]
    assert log_probs == pytest.approx([float(x) for x in want], abs=1e-6)  # greedy reports temperature 1
    tokens, log_probs, stopped = sample(Scripted(table[:2]), [1], 3, {"temperature": 0.5, "top_k": 1}, {eos})
    assert tokens == [0, 1, 1] and not stopped  # cut at the length limit
    want = [torch.log_softmax(table[min(i, 1)] / 0.5, -1)[t] for i, t in enumerate(tokens)]
    assert log_probs == pytest.approx([float(x) for x in want], abs=1e-6)  # log π at temperature T, before top-k


def test_overrides_replace_the_recipes_keys_and_keep_the_users_order():
    recipe = ["a.b=1", "+c.d=2", "e=3"]
    assert merge(recipe, ["a.b=9", "c.d=8", "~x"]) == ["e=3", "a.b=9", "c.d=8", "~x"]
    assert override_key("++a.b=1") == "a.b"
    with pytest.raises(UserError, match="KEY=VALUE"):
        merge(recipe, ["a.b"])
