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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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
    assert "Δ vs grpo (pts)" in table
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["runs"]["default"]["dgpo"]) == 2
    paired = summary["statistics"]["default"]["dgpo"]["paired"]
    assert paired["n"] == 2 and paired["wins"] + paired["losses"] <= 2
    assert (out / "weights.png").exists() and (out / "curves.png").exists()


@pytest.mark.slow
def test_compare_passes_runs_every_level_with_the_same_generation_batches(tmp_path):
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump(SMALL))
    out = tmp_path / "frontier"
    command = ["compare", "--out", str(out), "--objectives", "grpo,dgpo(n=2)", "--seeds", "1", "--steps", "4",
               "--passes", "1,2", "--config", str(config)]  # fmt: skip
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    for name, steps in (("grpo-p1-seed0", 2), ("dgpo-n2-p1-seed0", 2), ("grpo-p2-seed0", 4), ("dgpo-n2-p2-seed0", 4)):
        rows = [json.loads(line) for line in (out / "runs" / name / "metrics.jsonl").read_text().splitlines()]
        assert rows[-1]["step"] == steps, name  # 2 generation batches × passes
        assert "grad_share/ln" in rows[-1] and "grad/abs_sum" in rows[-1]
    table = (out / "table.md").read_text()
    assert "**2 passes per generation batch" in table and "| `dgpo(n=2)` |" in table
    assert (out / "frontier.png").stat().st_size > 30_000


def test_compare_rejects_unknown_objectives(tmp_path):
    result = CliRunner().invoke(app, ["compare", "--out", str(tmp_path), "--objectives", "grpo,nope"])
    assert result.exit_code == 2
    assert "Invalid value for '--objectives': unknown objective 'nope'" in " ".join(result.output.split())


@pytest.mark.slow
def test_compare_runs_the_same_study_on_a_given_model_and_dataset(tmp_path, tiny_model_dir):
    # --model/--dataset: no warm start, held_out.rows rows of the dataset held out (the same for every run).
    rows = [{"problem": f"{a} + {b} = ?", "answer": str(a + b)} for a in range(10) for b in range(6)]
    dataset = tmp_path / "sums.jsonl"
    dataset.write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = tmp_path / "small.yaml"
    small = {"rl": SMALL["rl"], "held_out": {"k": 1, "max_new_tokens": 16, "rows": 12}, "template": "{problem}"}
    small["rl"] = {**small["rl"], "max_completion_length": 16}
    config.write_text(yaml.safe_dump(small))
    out = tmp_path / "on-model"
    command = ["compare", "--out", str(out), "--objectives", "grpo,dgpo", "--seeds", "1", "--steps", "2",
               "--model", str(tiny_model_dir), "--dataset", str(dataset), "--config", str(config)]  # fmt: skip
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    assert not (out / "warm" / "seed0" / "warm_start").exists()  # the given model is the starting point
    for name in ("grpo-seed0", "dgpo-seed0"):
        results = json.loads((out / "runs" / name / "results.json").read_text())
        assert results["before"]["items"] == 12 and results["after"]["items"] == 12
    assert "| `dgpo` |" in (out / "table.md").read_text()


def test_held_out_rows_are_a_fixed_split_of_the_dataset():
    from dgpo.train.run import split_held_out

    rows = [{"problem": str(i), "answer": str(i)} for i in range(50)]
    train, test = split_held_out(rows, 10, "d")
    assert len(train) == 40 and len(test) == 10 and not {r["problem"] for r in train} & {r["problem"] for r in test}
    assert split_held_out(rows, 10, "d")[1] == test  # the same rows every time (every seed and objective)
    assert split_held_out(rows, 0, "d") == (rows, None)
    with pytest.raises(ValueError, match=r"held_out\.rows = 50 leaves no training rows: d has 50 rows"):
        split_held_out(rows, 50, "d")


def test_a_kill_mid_copy_never_leaves_a_half_warm_start(tmp_path, monkeypatch):
    # Found by the kill test above: killed inside copytree, the old code left runs/<run>/warm_start half-copied and
    # the re-run took it as complete ("Unrecognized model"). Now the copy lands under another name first.
    import dgpo.compare

    warm = tmp_path / "warm"
    (warm / "warm_start").mkdir(parents=True)
    (warm / "warm_start" / "config.json").write_text("{}")
    (warm / "held_out_before.json").write_text('{"greedy": 0.5}')
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    real_copytree = dgpo.compare.shutil.copytree

    def killed(source, target):
        Path(target).mkdir()  # the copy had begun when the process died
        raise KeyboardInterrupt

    monkeypatch.setattr(dgpo.compare.shutil, "copytree", killed)
    with pytest.raises(KeyboardInterrupt):
        dgpo.compare.share_warm_start(warm, run_dir)
    assert not (run_dir / "warm_start").exists() and (run_dir / "warm_start.partial").exists()

    monkeypatch.setattr(dgpo.compare.shutil, "copytree", real_copytree)
    dgpo.compare.share_warm_start(warm, run_dir)  # the re-run
    assert (run_dir / "warm_start" / "config.json").read_text() == "{}"
    assert not (run_dir / "warm_start.partial").exists()
    assert json.loads((run_dir / "held_out_before.json").read_text()) == {"greedy": 0.5}
