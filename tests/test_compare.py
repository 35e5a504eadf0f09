"""Diagnostics: plots, the confidence-interval maths, and `dgpo compare` (finishes, resumes after a kill)."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dgpo.cli import app
from dgpo.losses import LOSSES
from dgpo.plot import CURVES, plot_runs, plot_weights
from dgpo.stats import t_interval
from polling import wait_for


def test_t_interval_hand_computed():
    # [0.5, 0.7, 0.9]: mean 0.7, s = 0.2, t_{0.975,2} = 4.303 → half-width 4.303 · 0.2 / √3 = 0.49687
    interval = t_interval([0.5, 0.7, 0.9])
    assert interval.mean == pytest.approx(0.7)
    assert interval.half_width == pytest.approx(4.303 * 0.2 / math.sqrt(3), rel=1e-12)
    # two values 0.4, 0.6: s = 0.1414, t_{0.975,1} = 12.706 → 12.706 · 0.14142 / √2 = 1.2706
    assert t_interval([0.4, 0.6]).half_width == pytest.approx(1.2706, rel=1e-4)
    assert math.isnan(t_interval([0.3]).half_width) and t_interval([0.3]).format() == "30.0 (n=1)"
    assert t_interval([0.5, 0.7, 0.9]).format() == "70.0 ± 49.7"
    with pytest.raises(ValueError, match="at least one value"):
        t_interval([])


def test_overlap():
    a, b, c = t_interval([0.50, 0.52, 0.54]), t_interval([0.53, 0.55, 0.57]), t_interval([0.90, 0.91, 0.92])
    assert a.overlaps(b) and b.overlaps(a)
    assert not a.overlaps(c)
    assert t_interval([0.1]).overlaps(c)  # unknown spread never claims a difference


def test_weights_plot_has_one_line_per_objective_in_each_panel(tmp_path):
    out = tmp_path / "weights.png"
    figure = plot_weights(out)
    assert out.stat().st_size > 20_000
    assert [len(ax.get_lines()) for ax in figure.axes] == [len(LOSSES), len(LOSSES)]
    subset = plot_weights(tmp_path / "w2.png", ["grpo", "dgpo"])
    assert [len(ax.get_lines()) for ax in subset.axes] == [2, 2]


def fake_run(folder: Path, objective: str, seed: int, rewards: list[float]) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "rl": {"objective": objective}}))
    rows = [
        {"step": i + 1, "reward": r, "entropy": 0.5, "region/ln": 0.1, "region/hp": 0.1, "weight/vs_pg_max": 1.0,
         "weight/ln_vs_pg_max": 0.9, "grad_norm": 1.0, "completions/mean_length": 20}
        for i, r in enumerate(rewards)
    ]  # fmt: skip
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = {"greedy": 0.5, "avg": 0.4, "pass": 0.6, "items": 10}
    (folder / "results.json").write_text(json.dumps({"before": result, "after": {**result, "greedy": 0.7}}))
    return folder


def test_run_curves_plot_one_line_per_run(tmp_path):
    runs = [fake_run(tmp_path / "a", "grpo", 0, [0.1, 0.2, 0.3]), fake_run(tmp_path / "b", "dgpo", 1, [0.2, 0.4])]
    figure = plot_runs(runs, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 20_000
    assert [len(ax.get_lines()) for ax in figure.axes[: len(CURVES)]] == [2] * len(CURVES)
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert labels == ["grpo seed 0", "dgpo seed 1"]
    assert len(figure.axes[len(CURVES)].patches) == 4  # before/after bars for two runs


def test_plot_cli(tmp_path):
    runner = CliRunner()
    assert runner.invoke(app, ["plot", "weights", "--out", str(tmp_path / "w.png")]).exit_code == 0
    assert (tmp_path / "w.png").exists()
    result = runner.invoke(app, ["plot", str(tmp_path / "missing"), "--out", str(tmp_path / "c.png")])
    assert result.exit_code == 2 and "run directory not found" in result.output


SMALL = {
    "task": {"digits": 1, "train_size": 40, "test_size": 10},
    "warm_start": {"steps": 30},
    "rl": {"save_steps": 2, "per_device_train_batch_size": 8, "num_generations": 4, "reward_workers": 1},
    "held_out": {"k": 1, "max_new_tokens": 40},
}


def test_compare_finishes_resumes_after_a_kill_and_writes_the_table(tmp_path):
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump(SMALL))
    out = tmp_path / "cmp"
    command = [sys.executable, "-m", "dgpo.cli", "compare", "--out", str(out), "--objectives", "grpo,dgpo",
               "--seeds", "2", "--steps", "2", "--config", str(config)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Killed as soon as the first of the four runs (grpo seed 0, dgpo seed 0, grpo seed 1, dgpo seed 1) finishes.
    first = out / "runs" / "grpo-seed0" / "results.json"
    try:
        wait_for(first.exists, process, "the first run's results.json")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert not (out / "runs" / "dgpo-seed1" / "results.json").exists(), "the kill should land mid-comparison"
    assert not (out / "table.md").exists()
    finished_at = first.stat().st_mtime

    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "grpo-seed0: finished, skipped" in result.stdout
    assert first.stat().st_mtime == finished_at  # not repeated
    table = (out / "table.md").read_text()
    assert "| `grpo` |" in table and "| `dgpo` |" in table and "mean ± 95% t-interval over 2 seed(s)" in table
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["objectives"]["dgpo"]) == 2
    assert (out / "weights.png").exists() and (out / "curves.png").exists()


def test_compare_rejects_unknown_objectives(tmp_path):
    result = CliRunner().invoke(app, ["compare", "--out", str(tmp_path), "--objectives", "grpo,nope"])
    assert result.exit_code == 2 and "unknown objective(s) nope" in " ".join(result.output.split())
