"""The Countdown testbed: problems, search traces, the task's config preset, and a short training run."""

from __future__ import annotations

import json
import re
import statistics

import pytest
import yaml
from typer.testing import CliRunner

from dgpo.cli import app
from dgpo.rewards import countdown_reward
from dgpo.train.countdown import as_terms, search_trace, solution_counts, steps
from dgpo.train.rl import rl_prompts
from dgpo.train.run_config import TASK_PRESETS, load_config
from dgpo.train.task import TaskConfig, make_splits

COUNTDOWN = TaskConfig(name="countdown", train_size=300, test_size=60, seed=3)


@pytest.fixture(scope="module")
def splits():
    return make_splits(COUNTDOWN)


def test_splits_are_seeded_disjoint_and_sized(splits):
    train, test = splits
    assert (len(train), len(test)) == (300, 60)
    key = lambda row: (tuple(sorted(row["numbers"])), row["target"])  # noqa: E731
    assert not {key(r) for r in train} & {key(r) for r in test}
    assert len({key(r) for r in train}) == len(train)
    assert make_splits(COUNTDOWN) == splits  # pure Python randomness: the same on every machine
    assert make_splits(TaskConfig(name="countdown", train_size=300, test_size=60, seed=4))[0] != train


def test_every_problem_has_several_answers_and_its_trace_solves_it(splits):
    for row in splits[0] + splits[1]:
        numbers, target = row["numbers"], row["target"]
        assert len(numbers) == 3 and all(1 <= n <= COUNTDOWN.max_number for n in numbers)
        assert COUNTDOWN.min_target <= target <= COUNTDOWN.max_target
        assert solution_counts(numbers)[target] >= COUNTDOWN.min_solutions
        assert row["solution"].startswith("<think>") and row["solution"].endswith(f"<answer>{row['answer']}</answer>")
        assert countdown_reward(row["solution"], numbers, target) == 1.0
        assert row["problem"] == f"Use {' '.join(map(str, numbers))} to make {target}."


def test_traces_search_with_correct_arithmetic_and_end_at_the_first_success(splits):
    failed_attempts = []
    for row in splits[0]:
        think = row["solution"][len("<think>") : row["solution"].index("</think>")]
        attempts = think.split(". ")
        assert attempts[-1].endswith("yes.")
        assert all(a.endswith(" no") for a in attempts[:-1])
        failed_attempts.append(len(attempts) - 1)
        for a, op, b, c in re.findall(r"(\d+)([-+*/])(\d+)=(\d+)", think):
            a, b, c = int(a), int(b), int(c)
            assert {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[op] == c
            assert c > 0  # the game's rule: positive integer intermediates
    # A search, not an answer key: most traces try and fail before they succeed, some many times.
    assert statistics.mean(n > 0 for n in failed_attempts) > 0.5
    assert max(failed_attempts) >= 5


def test_final_move_is_the_closest_to_the_target():
    import random

    trace, answer = search_trace([4, 7, 3], 33, random.Random(0))
    assert countdown_reward(f"<answer>{answer}</answer>", [4, 7, 3], 33) == 1.0
    for attempt in trace.rstrip(".").split(". "):
        first, final = attempt.split(", ")
        left = re.fullmatch(r"(\d+)[-+*/](\d+)=(\d+)", first)
        value = int(left.group(3))
        rest = [4, 7, 3]
        rest.remove(int(left.group(1)))
        rest.remove(int(left.group(2)))
        best = min(abs(s.result.value - 33) for s in steps(as_terms([value, rest[0]])))
        got = int(re.search(r"=(\d+)", final).group(1))
        assert abs(got - 33) == best


def test_preset_trace_lengths_in_tokens():
    # The search is long enough to matter: tokens of the warm-start traces under the embedded tokenizer (digits one
    # per token), on the preset's task (pure Python: the same on every machine).
    from dgpo.tiny import train_tokenizer

    train, _ = make_splits(load_config(None, {"task": {"name": "countdown", "train_size": 800}}).task)
    tokenizer = train_tokenizer([f"{r['problem']} {r['solution']}" for r in train[:400]])
    lengths = sorted(len(tokenizer(r["solution"])["input_ids"]) for r in train)
    assert statistics.median(lengths) >= 40
    assert lengths[int(0.9 * len(lengths))] >= 100


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "sudoku"}, "unknown task.name 'sudoku'; valid tasks: addition, countdown"),
        ({"name": "countdown", "numbers": 1}, "task.numbers must be in 2..4"),
        ({"name": "countdown", "numbers": 5}, "task.numbers must be in 2..4"),
        ({"name": "countdown", "max_number": 0}, "task.max_number must be in 1..1000"),
        ({"name": "countdown", "min_target": 0}, "task.min_target"),
        ({"name": "countdown", "min_target": 50, "max_target": 40}, "task.min_target <= task.max_target"),
        ({"name": "countdown", "min_solutions": 0}, "task.min_solutions must be >= 1"),
        ({"name": "countdown", "test_size": 0}, "train_size and test_size must be >= 1"),
    ],
)
def test_bad_task_settings(fields, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TaskConfig(**fields)


def test_impossible_sizes_fail_with_a_clear_error():
    cfg = TaskConfig(name="countdown", max_number=2, train_size=50, test_size=10)  # 2·2·2 = 8 < 10, the least target
    with pytest.raises(ValueError, match="could not draw 60 distinct countdown problems"):
        make_splits(cfg)


def test_task_preset_sits_under_yaml_and_flags(tmp_path):
    cfg = load_config(None, {"task": {"name": "countdown"}})
    preset = TASK_PRESETS["countdown"]
    assert cfg.rl.max_completion_length == preset["rl"]["max_completion_length"]
    assert cfg.warm_start.steps == preset["warm_start"]["steps"] and cfg.rl.max_steps == preset["rl"]["max_steps"]
    assert load_config(None, {}).rl.max_completion_length == 48  # addition keeps its own
    assert load_config(None, {}).rl.max_steps == 60
    given = tmp_path / "c.yaml"
    given.write_text(yaml.safe_dump({"task": {"name": "countdown"}, "rl": {"max_completion_length": 99}}))
    assert load_config(given).rl.max_completion_length == 99
    assert load_config(given, {"warm_start": {"steps": 7}}).warm_start.steps == 7


def test_prompts_carry_the_reward_columns(splits):
    rows = rl_prompts(splits[0][:2], "{problem}")
    assert set(rows[0]) == {"prompt", "answer", "numbers", "target"}
    assert rows[0]["numbers"] == splits[0][0]["numbers"]


#: A countdown run small enough for CI (about 30 s on 2 idle cores): warm start 30 steps, 4 RL steps (2 generation
#: batches at 2 passes), 16 held-out items, completions up to 64 tokens.
SMOKE = {
    "task": {"name": "countdown", "train_size": 200, "test_size": 16},
    "warm_start": {"steps": 30, "batch_size": 8},
    "rl": {
        "max_steps": 4,
        "save_steps": 2,
        "per_device_train_batch_size": 16,
        "num_generations": 4,
        "max_completion_length": 64,
    },
    "held_out": {"k": 1, "max_new_tokens": 64},
}


@pytest.mark.slow
def test_countdown_training_smoke(tmp_path):
    config = tmp_path / "countdown.yaml"
    config.write_text(yaml.safe_dump(SMOKE))
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--config", str(config), "--output-dir", str(run)])
    assert result.exit_code == 0, result.output
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4]
    assert all(m["entropy"] > 0 for m in metrics)  # every step: the study's entropy curves read it
    generating = [m for m in metrics if m["step"] in (1, 3)]  # reward and length: once per generation batch
    for m in generating:
        assert 0 < m["completions/mean_length"] <= 64
        assert 0.0 <= m["rewards/countdown_reward/mean"] <= 1.0
    results = json.loads((run / "results.json").read_text())
    for stage in ("before", "after"):
        assert results[stage]["items"] == 16
        assert 0 < results[stage]["length_median"] <= results[stage]["length_p90"] <= 64
    used = yaml.safe_load((run / "config.yaml").read_text())
    preset = TASK_PRESETS["countdown"]["rl"]["learning_rate"]
    assert used["task"]["name"] == "countdown" and used["rl"]["learning_rate"] == preset  # the preset, under the YAML
    assert used["rl"]["max_completion_length"] == 64  # the YAML, over the preset
