"""One home per default and per check: the CLI, DGPOConfig and the docs read the defaults of the dataclasses and the
choice lists of the registries instead of typing them again, and every config dataclass checks its own values (the
CLI only names the option); these tests fail when a copy drifts."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dgpo.advantages import ADVANTAGES
from dgpo.aggregation import AGGREGATIONS
from dgpo.cli import app
from dgpo.compare_spec import (
    DEFAULT_BASELINE,
    DEFAULT_OBJECTIVES,
    FRONTIER_PRESETS,
    QUICK_OBJECTIVES,
    QUICK_PASSES,
    QUICK_SEEDS,
    QUICK_STUDY_STEPS,
    STUDY_OBJECTIVES,
    STUDY_PASSES,
    STUDY_SEEDS,
    STUDY_STEPS,
    CompareSpec,
)
from dgpo.data.benchmarks import BENCHMARKS
from dgpo.eval import EvalConfig
from dgpo.eval.backends import BACKENDS, SamplingSettings
from dgpo.losses import LOSSES
from dgpo.train.run_config import (
    HeldOutConfig,
    RLConfig,
    RunConfig,
    TinyModelConfig,
    WarmStartConfig,
    default_of,
    to_dict,
)

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner(env={"COLUMNS": "200"})


def _help(command: str) -> str:
    """``dgpo COMMAND --help`` as one line of words: rich's box characters and line wrapping removed."""
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.replace("│", " ").split())


def _table(path: Path, header: str) -> list[list[str]]:
    """The rows (cells stripped) of the markdown table in ``path`` whose header line starts with ``header``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    assert rows, f"empty table {header!r} in {path}"
    return rows


def _documented(cell: str):
    """The default a table cell states: its first `code` (or **bold**) span, read as None, {}, a number or text."""
    match = re.search(r"`([^`]+)`|\*\*([^*]+)\*\*", cell)
    assert match, f"no default in cell {cell!r}"
    text = match.group(1) or match.group(2)
    if text == "None":
        return None
    if text == "{}":
        return {}
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def test_dgpo_config_reads_its_defaults_from_rl_config():
    pytest.importorskip("trl")
    from dgpo.integrations.trl import DGPOConfig

    for name in ("objective", "objective_kwargs", "advantage", "aggregation", "num_iterations"):
        assert default_of(DGPOConfig, name) == default_of(RLConfig, name), name


def test_training_md_flag_table_matches_run_config():
    defaults = to_dict(RunConfig())
    rows = _table(ROOT / "docs" / "training.md", "| flag | config key | default |")
    for flags, key, default in rows:
        value = defaults
        for part in key.strip("`").split("."):
            value = value[part]
        assert _documented(default) == value, f"{flags}: docs say {default}, RunConfig has {key} = {value!r}"
    covered = {flag for flags, _, _ in rows for flag in re.findall(r"`(--[\w-]+)`", flags)}
    train_flags = set(re.findall(r"(--[\w-]+)", _help("train"))) - {"--config", "--resume", "--overwrite", "--help"}
    assert covered == train_flags - {"--no-overwrite"}


def test_training_md_dgpo_config_table_matches_the_dataclass():
    pytest.importorskip("trl")
    from dgpo.integrations.trl import DGPOConfig

    rows = _table(ROOT / "docs" / "training.md", "| field | default | meaning |")
    assert {row[0].strip("`") for row in rows} >= {"objective", "advantage", "aggregation", "num_iterations"}
    for field, default, _ in rows:
        assert _documented(default) == default_of(DGPOConfig, field.strip("`")), field


def test_evaluation_md_table_matches_eval_config():
    rows = _table(ROOT / "docs" / "evaluation.md", "| option | default |")
    assert len(rows) >= 7
    for option, default in rows:
        name = option.strip("`").removeprefix("--").replace("-", "_")
        if name == "benchmarks":
            assert _documented(default) == "all" and default_of(EvalConfig, "benchmarks") == list(BENCHMARKS)
            assert ", ".join(BENCHMARKS) in default
        else:
            assert _documented(default) == default_of(EvalConfig, name), option


def test_eval_help_shows_eval_config_defaults_and_the_benchmarks():
    text = _help("eval")
    for option, name in (("k", "k"), ("temperature", "temperature"), ("top-p", "top_p"),
                         ("max-new-tokens", "max_new_tokens"), ("seed", "seed"), ("backend", "backend")):  # fmt: skip
        assert re.search(rf"--{option} .*?\(default {re.escape(str(default_of(EvalConfig, name)))}[;)]", text), name
    assert ",".join(BENCHMARKS) in text
    assert ", ".join(BACKENDS) in text


def test_train_help_shows_run_config_defaults_and_the_registries():
    text = _help("train")
    assert f"{', '.join(LOSSES)} (default {default_of(RLConfig, 'objective')})" in text
    assert f"{', '.join(ADVANTAGES)} (default {default_of(RLConfig, 'advantage')})" in text
    assert f"{', '.join(AGGREGATIONS)} (default {default_of(RLConfig, 'aggregation')})" in text
    assert f"RL optimiser steps (default {default_of(RLConfig, 'max_steps')})" in text
    assert f"RL learning rate (default {default_of(RLConfig, 'learning_rate')})" in text
    assert f"(default {default_of(RunConfig, 'output_dir')})" in text
    assert f"default {default_of(WarmStartConfig, 'steps')})" in text


def test_compare_help_shows_compare_spec_defaults_and_the_presets():
    text = _help("compare")
    seeds = f"(default {default_of(CompareSpec, 'seeds')}; {QUICK_SEEDS} with --quick; {STUDY_SEEDS} with --frontier)"
    assert seeds in text
    assert f"RL steps per run (default {default_of(CompareSpec, 'steps')}; {STUDY_STEPS} with --frontier" in text
    assert f"in minutes (default {default_of(CompareSpec, 'minutes'):g}" in text
    assert f"(default {','.join(DEFAULT_OBJECTIVES)}; {','.join(QUICK_OBJECTIVES)} with --quick;" in text
    assert f"passes {','.join(map(str, STUDY_PASSES))} × {','.join(STUDY_OBJECTIVES)}" in text
    assert f"(default {DEFAULT_BASELINE} when compared, else the first objective)" in text
    assert ", ".join(LOSSES) in text
    assert default_of(CompareSpec, "objectives") == DEFAULT_OBJECTIVES


@pytest.mark.parametrize(
    ("args", "objectives", "seeds", "passes", "baseline", "steps"),
    [([], DEFAULT_OBJECTIVES, None, (), "grpo", None),
     (["--quick"], QUICK_OBJECTIVES, QUICK_SEEDS, (), "grpo", None),
     (["--quick", "--seeds", "1", "--objectives", "pg"], ("pg",), 1, (), "pg", None),
     (["--frontier"], STUDY_OBJECTIVES, STUDY_SEEDS, STUDY_PASSES, "grpo", STUDY_STEPS),
     (["--frontier", "--quick"], QUICK_OBJECTIVES, QUICK_SEEDS, QUICK_PASSES, "grpo", QUICK_STUDY_STEPS),
     (["--frontier", "--steps", "8"], STUDY_OBJECTIVES, STUDY_SEEDS, STUDY_PASSES, "grpo", 8),
     (["--objectives", "dgpo(m=1),dgpo", "--baseline", "dgpo(n=1)", "--passes", "8"], ("dgpo(m=1)", "dgpo"), None,
      (8,), "dgpo", None)],
)  # fmt: skip
def test_compare_fills_unset_options_from_compare_spec(
    monkeypatch, tmp_path, args, objectives, seeds, passes, baseline, steps
):
    import dgpo.compare

    seen = []
    monkeypatch.setattr(dgpo.compare, "run_compare", seen.append)
    result = runner.invoke(app, ["compare", "--out", str(tmp_path / "c"), *args])
    assert result.exit_code == 0, result.output
    (spec,) = seen
    assert tuple(arm.label for arm in spec.arms) == objectives
    assert spec.seeds == (seeds if seeds is not None else default_of(CompareSpec, "seeds"))
    assert spec.steps == (steps if steps is not None else default_of(CompareSpec, "steps"))
    assert spec.minutes == default_of(CompareSpec, "minutes")
    assert (spec.passes, spec.baseline) == (passes, baseline)
    assert spec.run_config(None, 0, tmp_path).held_out.k == (1 if "--frontier" in args else 4)


def test_eval_fills_unset_options_from_eval_config(monkeypatch, tmp_path):
    import dgpo.eval

    seen = []
    monkeypatch.setattr(dgpo.eval, "run_eval", lambda cfg, generate: seen.append(cfg))
    result = runner.invoke(app, ["eval", "--model", "m", "--out", str(tmp_path / "e"), "--k", "4"])
    assert result.exit_code == 0, result.output
    (cfg,) = seen
    assert cfg == EvalConfig(model="m", out=str(tmp_path / "e"), k=4)


@pytest.mark.parametrize(
    ("build", "message"),
    [(lambda out: RLConfig(max_steps=0), "rl.max_steps must be >= 1, got 0"),
     (lambda out: RLConfig(num_generations=1), "rl.num_generations must be >= 2, got 1"),
     (lambda out: RLConfig(save_steps=3), "rl.save_steps=3 must be a multiple of the generation cycle (2 steps)"),
     (lambda out: RLConfig(advantage="ppo"), "unknown advantage 'ppo'; valid advantages: " + ", ".join(ADVANTAGES)),
     (lambda out: RLConfig(objective_kwargs={"n": "abc"}), "rl.objective_kwargs: DGPOLossConfig.n must be a number"),
     (lambda out: WarmStartConfig(learning_rate=float("nan")), "warm_start.learning_rate must be a finite number > 0"),
     (lambda out: HeldOutConfig(rows=-1), "held_out.rows must be >= 0, got -1"),
     (lambda out: TinyModelConfig(hidden_size=12), "tiny.hidden_size must be a positive multiple of 8"),
     (lambda out: RunConfig(template="no problem"), "template must contain '{problem}'"),
     (lambda out: SamplingSettings(float("inf"), 1.0, 8), "temperature must be a finite number >= 0, got inf"),
     (lambda out: EvalConfig(model="m", out=str(out), top_p=0.0), "top_p must be in (0, 1], got 0.0"),
     (lambda out: EvalConfig(model="m", out=str(out), batch_size=0), "batch_size must be >= 1, got 0"),
     (lambda out: EvalConfig(model="m", out=str(out), reward_workers=0), "reward_workers must be >= 1, got 0"),
     (lambda out: EvalConfig(model="m", out=str(out), reward_timeout=0.0), "reward_timeout must be > 0, got 0.0"),
     (lambda out: CompareSpec(out=out, minutes=float("inf")), "minutes must be a finite number > 0, got inf"),
     (lambda out: CompareSpec(out=out, passes=(2, 2)), "passes must be distinct integers >= 1, got 2,2"),
     (lambda out: CompareSpec.preset(out, task="sudoku"), "unknown task.name 'sudoku'; valid tasks: addition")],
)  # fmt: skip
def test_each_config_dataclass_checks_its_own_values(tmp_path, build, message):
    with pytest.raises(ValueError) as caught:
        build(tmp_path)
    assert message in str(caught.value)
    assert "--" not in str(caught.value)  # a dataclass names its field; only the CLI knows the option


@pytest.mark.parametrize(
    ("task", "quick"), [("addition", False), ("addition", True), ("countdown", False), ("countdown", True)]
)
def test_compare_spec_preset_holds_the_frontier_studies(tmp_path, task, quick):
    study = FRONTIER_PRESETS[(task, quick)]
    spec = CompareSpec.preset(tmp_path, frontier=True, quick=quick, task=task, steps=None, seeds=2)
    assert tuple(arm.label for arm in spec.arms) == study.objectives and spec.passes == study.passes
    assert (spec.seeds, spec.steps) == (2, study.steps)  # a given value wins over the preset's
    assert spec.base == {"held_out": {"k": 1}, "task": {"name": task}}
    plain = CompareSpec.preset(tmp_path, quick=quick)
    assert (plain.objectives, plain.seeds) == ((QUICK_OBJECTIVES, QUICK_SEEDS) if quick else (DEFAULT_OBJECTIVES, 3))


def test_reward_workers_have_one_default():
    from dgpo.rewards.pool import DEFAULT_WORKERS
    from dgpo.rewards.verifier import MathVerifier

    assert default_of(RLConfig, "reward_workers") == default_of(EvalConfig, "reward_workers") == DEFAULT_WORKERS
    assert inspect.signature(MathVerifier).parameters["workers"].default == DEFAULT_WORKERS
