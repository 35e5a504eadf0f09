"""The off-policy study of ``dgpo compare``: arms, paired statistics, the per-level table and frontier.png.

The statistics are checked by hand on fake finished runs (no training); tests/test_compare.py runs real ones.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from rich.console import Console

from dgpo.compare_report import summarize_compare
from dgpo.compare_spec import CompareSpec, parse_arm, parse_arms
from dgpo.stats import paired_difference
from dgpo.train.run_config import load_config, read_overrides


def test_paired_difference_hand_computed():
    # arm 0.62, 0.55, 0.71 vs baseline 0.60, 0.50, 0.70: d = 0.02, 0.05, 0.01, mean 0.02667,
    # s_d = 0.020817, t_{0.975,2} = 4.303 → half-width 4.303 · 0.020817 / √3 = 0.051717
    paired = paired_difference([0.62, 0.55, 0.71], [0.60, 0.50, 0.70])
    assert paired.interval.mean == pytest.approx(0.026667, abs=1e-6)
    assert paired.interval.half_width == pytest.approx(4.303 * 0.0208167 / math.sqrt(3), rel=1e-5)
    assert (paired.wins, paired.losses, paired.n) == (3, 0, 3)
    assert not paired.resolved()  # 0.0267 − 0.0517 < 0
    assert paired.format() == "+2.7 ± 5.2"
    # The same differences on top of a large shared spread: the unpaired intervals overlap, the paired one does not.
    tight = paired_difference([0.95, 0.55, 0.35], [0.90, 0.50, 0.30])
    assert tight.resolved() and tight.interval.half_width < 1e-9 and tight.format() == "+5.0 ± 0.0"
    assert paired_difference([0.4, 0.5], [0.5, 0.5]).losses == 1
    with pytest.raises(ValueError, match="equal lengths"):
        paired_difference([0.1], [0.1, 0.2])


@pytest.mark.parametrize(
    ("text", "label", "slug"),
    [
        ("dgpo", "dgpo", "dgpo"),
        ("dgpo(n=1,m=2)", "dgpo", "dgpo"),  # the defaults: the same arm as plain dgpo
        ("dgpo(n=2, m=2)", "dgpo(n=2)", "dgpo-n2"),
        ("dgpo(m=1,n=0.5)", "dgpo(n=0.5,m=1)", "dgpo-n0.5-m1"),  # field order, not the order given
        (" cispo(eps_high=4) ", "cispo(eps_high=4)", "cispo-eps_high4"),
    ],
)
def test_arms_are_canonical(text, label, slug):
    arm = parse_arm(text)
    assert (arm.label, arm.slug) == (label, slug)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("nope", "unknown objective 'nope'; valid objectives: pg, grpo"),
        ("dgpo(k=1)", "unknown parameter(s) k for objective 'dgpo'; valid parameters: n, m, eps_low, eps_high"),
        ("dgpo(n=-1)", "DGPOLossConfig.n must be > 0, got -1.0"),
        ("dgpo(n=1", "cannot read objective 'dgpo(n=1'"),
        ("dgpo(n)", "'n' is not key=number"),
        ("dgpo(n=abc)", "'n=abc' is not key=number"),
        ("grpo,dgpo,dgpo(n=1)", "objective(s) listed twice: dgpo"),
        ("", "no objective given"),
    ],
)
def test_bad_arms_name_the_problem(text, error):
    with pytest.raises(ValueError) as info:
        parse_arms(text)
    assert error in str(info.value)


def test_passes_keep_generation_batches_and_learning_rate(tmp_path):
    spec = CompareSpec(out=tmp_path, objectives=("grpo,dgpo(n=2)",), passes=(1, 16))
    assert spec.generations == 30  # 60 steps at the default 2 passes
    for passes in (1, 16):
        rl = spec.run_config(spec.arms[1], 0, tmp_path / "r", passes).rl
        assert (rl.num_iterations, rl.max_steps, rl.learning_rate) == (passes, 30 * passes, 2e-5)
        assert rl.objective == "dgpo" and rl.objective_kwargs == {"n": 2.0}
    assert spec.run_dir(spec.arms[1], 3, 16) == tmp_path / "runs" / "dgpo-n2-p16-seed3"
    assert CompareSpec(out=tmp_path, objectives=("grpo",)).run_dir(parse_arm("grpo"), 0, None).name == "grpo-seed0"


def test_a_config_file_is_checked_in_the_runs_it_ends_up_in(tmp_path):
    # rl.num_iterations: 3 alone leaves the default save_steps 20 off its cycle; --passes sets both per level.
    (tmp_path / "c.yaml").write_text("rl: {num_iterations: 3}\n")
    base = read_overrides(tmp_path / "c.yaml")
    spec = CompareSpec.preset(tmp_path / "out", quick=False, frontier=False, base=base, passes=(1, 2, 4))
    assert spec.generations == 20  # 60 steps at the file's 3 passes
    for passes in (1, 2, 4):
        rl = spec.run_config(spec.arms[0], 0, tmp_path / "r", passes).rl
        assert (rl.num_iterations, rl.max_steps, rl.save_steps) == (passes, 20 * passes, 6 * passes)
    with pytest.raises(ValueError, match=r"^rl\.save_steps=20 must be a multiple of the generation cycle \(3"):
        load_config(tmp_path / "c.yaml")  # the same file as a whole run is refused
    (tmp_path / "c.yaml").write_text("rl: {num_iterations: 3, save_steps: 20}\n")
    with pytest.raises(ValueError, match=r"c\.yaml: rl\.save_steps=20 must be a multiple"):
        load_config(tmp_path / "c.yaml")  # a value the file set: the file is named


def fake_run(folder: Path, before: float, after: float, ln_share: float, outside: float, collapse: bool = False):
    folder.mkdir(parents=True)
    rows = [
        {"step": s, "reward": 0.0 if collapse else 0.5, "entropy": 0.5, "region/ln": outside / 2,
         "region/hp": outside / 2, "region/lp": 0.0, "region/hn": 0.0, "weight/ln_vs_pg_max": 0.9,
         "grad_share/ln": ln_share, "grad/abs_sum": 1.0, "grad_norm": 1.0}
        for s in (1, 2, 3)
    ]  # fmt: skip
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = {"avg": 0.4, "pass": 0.6, "items": 10}
    payload = {"before": {**result, "greedy": before}, "after": {**result, "greedy": after}}
    (folder / "results.json").write_text(json.dumps(payload))


@pytest.mark.slow
def test_report_pairs_every_level_and_draws_the_frontier(tmp_path):
    spec = CompareSpec(out=tmp_path, objectives=("grpo,cispo,dgpo",), seeds=3, passes=(1, 4, 16))
    warm = [0.40, 0.55, 0.30]  # different warm starts per seed, shared by every arm
    gains = {"grpo": 0.20, "cispo": 0.10, "dgpo": 0.25}
    for passes in spec.passes:
        for arm in spec.arms:
            for seed, start in enumerate(warm):
                loss = 0.02 * seed  # seed-dependent noise, shared: the paired differences stay exact
                collapse = arm.label == "cispo" and passes == 16 and seed == 0
                after = 0.05 if collapse else start + gains[arm.label] - loss
                fake_run(spec.run_dir(arm, seed, passes), start, after, 0.01 * passes, 0.001 * passes, collapse)
    summary = summarize_compare(spec, Console(quiet=True))

    table = (tmp_path / "table.md").read_text()
    assert "**1 pass per generation batch — held-out greedy accuracy after RL (%)**" in table
    assert "| objective | greedy | Δ vs grpo (pts) | wins/losses |" in table
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| `")}
    assert len(rows) == 3  # one row per arm; the three levels repeat the labels
    level_4 = summary["statistics"]["4"]
    assert level_4["dgpo"]["paired"]["mean"] == pytest.approx(0.05) and level_4["dgpo"]["paired"]["wins"] == 3
    assert level_4["dgpo"]["paired"]["half_width"] == pytest.approx(0.0, abs=1e-12)  # identical differences
    assert level_4["cispo"]["paired"]["losses"] == 3 and level_4["grpo"]["paired"] is None
    assert "| `dgpo` | " in table and "+5.0 ± 0.0 *" in table and "| 3/0 |" in table
    # The absolute interval still carries the warm starts' spread: ± far more than the paired one.
    assert level_4["dgpo"]["greedy"]["half_width"] > 0.2
    level_16 = summary["statistics"]["16"]
    assert level_16["cispo"]["collapsed"] == 1 and level_16["grpo"]["collapsed"] == 0
    assert level_16["dgpo"]["grad_share_ln"] == pytest.approx(0.16)
    assert level_16["dgpo"]["outside_mean"] == pytest.approx(0.016)

    assert (tmp_path / "frontier.png").stat().st_size > 30_000
    assert (tmp_path / "curves.png").exists() and (tmp_path / "weights.png").exists()
    assert (tmp_path / "dynamics.png").stat().st_size > 30_000
    assert "| entropy first→last | length first→last |" in table
    assert level_4["dgpo"]["entropy_last"] == pytest.approx(0.5) and level_4["dgpo"]["length_last3"] is None


def test_dynamics_are_read_once_per_generation_batch_from_the_sampling_policy(tmp_path):
    from dgpo.plot import DYNAMICS_PANELS, per_generation_batch, plot_dynamics

    # 4 passes per batch: reward and length are logged at the generating step, entropy at every step.
    rows = [
        {"step": s, "entropy": 1.0 + s,
         **({"reward": s / 10, "completions/mean_length": 10.0 * s} if s % 4 == 1 else {})}
        for s in range(1, 13)
    ]  # fmt: skip
    assert per_generation_batch(rows, "reward", 4) == {1: 0.1, 2: 0.5, 3: 0.9}
    assert per_generation_batch(rows, "entropy", 4) == {1: 2.0, 2: 6.0, 3: 10.0}  # the first step of each batch
    assert per_generation_batch([*rows, {"step": 13, "entropy": float("nan")}], "entropy", 4) == {
        1: 2.0,
        2: 6.0,
        3: 10.0,
    }
    runs = {}
    for seed, shift in enumerate((0.0, 1.0)):
        run = tmp_path / f"dgpo-seed{seed}"
        run.mkdir()
        run.joinpath("metrics.jsonl").write_text(
            "".join(json.dumps({**r, "entropy": r["entropy"] + shift}) + "\n" for r in rows)
        )
        runs.setdefault("dgpo", []).append(run)
    figure = plot_dynamics(tmp_path / "d.png", {4: runs, 1: runs})
    assert len(figure.axes) == 2 * len(DYNAMICS_PANELS)
    entropy = figure.axes[1].get_lines()[0]
    assert list(entropy.get_xdata()) == [1, 2, 3]
    assert list(entropy.get_ydata()) == pytest.approx([2.5, 6.5, 10.5])  # the mean over the two seeds


def test_frontier_lines_and_bands(tmp_path):
    from dgpo.plot import FRONTIER_PANELS, plot_frontier

    interval = {"mean": 0.1, "half_width": 0.05, "n": 3}
    stats = {
        label: {"greedy": interval, "paired": None if label == "grpo" else interval, "collapsed": 1, "n": 3,
                "outside_mean": 0.01, "grad_share_ln": 0.2, "grad_share_hp": 0.1, "grad_share_hn": 0.05,
                "ln_weight_vs_pg_max": 5.0}
        for label in ("grpo", "dgpo")
    }  # fmt: skip
    summary = {"passes": [1, 4], "seeds": 3, "baseline": "grpo", "statistics": {"1": stats, "4": stats}}
    figure = plot_frontier(tmp_path / "f.png", summary)
    panels = figure.axes[: len(FRONTIER_PANELS)]
    paired_panel = panels[0]
    assert [line.get_label() for line in paired_panel.get_lines()] == ["grpo (baseline)", "dgpo"]
    assert len(paired_panel.collections) == 1  # the band of dgpo's paired interval
    assert [len(ax.get_lines()) for ax in panels[1:]] == [2] * (len(FRONTIER_PANELS) - 1)
    collapse = panels[3].get_lines()[0].get_ydata()
    assert list(collapse) == pytest.approx([100 / 3, 100 / 3])
