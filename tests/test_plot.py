"""Plots a reader can read: unique legends outside the data, labelled symlog ticks, visible coinciding curves,
values on bars — checked on the matplotlib objects, not on pixels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from dgpo.plot import (
    CURVES,
    coincident_groups,
    grouped_line_styles,
    line_style,
    plot_runs,
    plot_weights,
    symlog_ticks,
)


def fake_run(folder: Path, objective: str, seed: int, ln_weight: float) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "rl": {"objective": objective}}))
    rows = [
        {"step": i + 1, "reward": 0.1 * i, "entropy": 0.5, "region/ln": 0.1, "region/hp": 0.1, "weight/vs_pg_max": 1.0,
         "weight/ln_vs_pg_max": ln_weight * (i + 1), "grad_norm": 1.0, "completions/mean_length": 20}
        for i in range(10)
    ]  # fmt: skip
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = {"greedy": 0.5, "avg": 0.4, "pass": 0.6, "items": 10}
    (folder / "results.json").write_text(json.dumps({"before": result, "after": {**result, "greedy": 0.7}}))
    return folder


@pytest.fixture(scope="module")
def weights_figure(tmp_path_factory):
    figure = plot_weights(tmp_path_factory.mktemp("w") / "weights.png")
    figure.canvas.draw()
    return figure


@pytest.fixture(scope="module")
def runs_figure(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    runs = [
        fake_run(root / "a" / "grpo-seed0", "grpo", 0, 0.5),
        fake_run(root / "b" / "grpo-seed0-again", "grpo", 0, 0.5),  # same objective and seed: a label collision
        fake_run(root / "c" / "grpo-seed0", "grpo", 0, 0.5),  # ... and the directory name collides too
        fake_run(root / "d" / "cispo-seed1", "cispo", 1, 3.0),
    ]
    figure = plot_runs(runs, root / "curves.png")
    figure.canvas.draw()
    return figure


def legend_texts(legend) -> list[str]:
    return [text.get_text() for text in legend.get_texts()]


def test_run_legend_texts_are_unique_when_objective_and_seed_collide(runs_figure):
    (legend,) = runs_figure.legends
    texts = legend_texts(legend)
    assert len(texts) == len(set(texts)) == 4 + 2  # four runs, before/after RL
    assert "grpo seed 0 [grpo-seed0-again]" in texts and "cispo seed 1" in texts
    assert sum(t.endswith("grpo-seed0") for t in texts) == 2  # the two "grpo-seed0" directories: full paths
    lines = runs_figure.axes[0].get_lines()
    assert len({line.get_label() for line in lines}) == 4


def symlog_axes(figure):
    return [ax for ax in figure.axes if ax.get_yscale() == "symlog"]


@pytest.mark.parametrize("figure_name", ["weights_figure", "runs_figure"])
def test_symlog_axes_label_values_above_one(figure_name, request):
    figure = request.getfixturevalue(figure_name)
    axes = symlog_axes(figure)
    assert axes
    for ax in axes:
        labels = {t.get_text() for t in ax.get_yticklabels()}
        assert {"0", "0.5", "1"} <= labels, labels
        if ax.get_ylim()[1] > 10:  # a panel reaching past 10 labels the values between 1 and 10
            assert {"2", "5", "10"} <= labels, labels
        assert len(ax.yaxis.get_minorticklocs()) > 5
    labels = {t.get_text() for ax in symlog_axes(figure) for t in ax.get_yticklabels()}
    assert "20" in labels  # CISPO's LN weight (40 on the weights plot; 30 in the fake runs) can be read off


def test_symlog_ticks_plain_and_within_range():
    major, minor = symlog_ticks(0.0, 45.0)
    assert major == [0.0, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 20.0]
    assert not set(major) & set(minor) and 30.0 in minor and 0.1 in minor and max(minor) <= 45
    assert symlog_ticks(-3.0, 3.0)[0][:3] == [-2.0, -1.0, -0.75]


def overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("figure_name", ["weights_figure", "runs_figure"])
def test_legends_do_not_cover_any_axes(figure_name, request):
    figure = request.getfixturevalue(figure_name)
    renderer = figure.canvas.get_renderer()
    legends = [*figure.legends, *(ax.get_legend() for ax in figure.axes if ax.get_legend() is not None)]
    assert legends
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in figure.axes:
            if ax.axison:
                assert not overlaps(box, ax.get_window_extent(renderer)), (legend_texts(legend), ax.get_title())


def test_coinciding_weight_curves_share_one_entry_and_the_rest_differ_in_style(weights_figure):
    for ax in weights_figure.axes:
        texts = legend_texts(ax.get_legend())
        lines = ax.get_lines()
        visible = [line for line in lines if not line.get_label().startswith("_")]
        # identical curves: one entry naming every objective it stands for ...
        for line in lines:
            twin = [v for v in visible if np.allclose(v.get_ydata(), line.get_ydata(), rtol=1e-6, atol=1e-9)]
            assert len(twin) == 1
            assert set(line.get_label().lstrip("_").split(" = ")) <= set(twin[0].get_label().split(" = "))
        # ... and distinct curves never look alike (dash and marker, not colour alone)
        styles = [(line.get_linestyle(), line.get_marker(), line.get_color()) for line in visible]
        assert len(set(styles)) == len(styles)
        assert {line.get_label() for line in visible} <= set(texts)
    assert "grpo = dapo" in legend_texts(weights_figure.axes[1].get_legend())  # LN side: both clip to 0 below 1−ε


def test_coincident_groups():
    curves = {"a": [0.0, 1.0], "b": [1.0, 1.0], "c": [0.0, 1.0 + 1e-12], "d": [0.0, 2.0]}
    assert coincident_groups(curves) == [["a", "c"], ["b"], ["d"]]


def test_bars_carry_their_values(runs_figure):
    accuracy = runs_figure.axes[len(CURVES)]
    containers = accuracy.containers
    assert len(containers) == 2
    values = [t.get_text() for t in accuracy.texts]
    assert values.count("50.0") == 4 and values.count("70.0") == 4


def style_key(style: dict) -> tuple:
    return style["color"], style["linestyle"], style["marker"]


def test_line_styles_stay_distinct_beyond_ten_lines():
    # A --frontier study plots 25 runs; colour and marker cycle every 10, so the dash must tell 0, 10, 20, 30 apart.
    styles = [style_key(line_style(i, 40)) for i in range(40)]
    assert len(set(styles)) == 40


def test_grouped_line_styles_one_colour_per_group_distinct_within():
    groups = [arm for arm in ("grpo", "dapo", "cispo", "gppo", "dgpo") for _ in range(5)]
    styles = grouped_line_styles(groups)
    colours = {group: {s["color"] for s, g in zip(styles, groups, strict=True) if g == group} for group in groups}
    assert all(len(c) == 1 for c in colours.values())
    assert len({next(iter(c)) for c in colours.values()}) == 5
    assert len({style_key(s) for s in styles}) == 25


def test_plot_runs_rejects_groups_of_the_wrong_length(tmp_path):
    run = fake_run(tmp_path / "grpo-seed0", "grpo", 0, 0.5)
    with pytest.raises(ValueError, match=r"groups: need one name per run \(1\), got 2"):
        plot_runs([run], tmp_path / "curves.png", groups=["grpo", "cispo"])


def test_a_key_without_any_finite_value_gets_no_curve_and_a_warning(tmp_path):
    run = fake_run(tmp_path / "grpo-seed0", "grpo", 0, 0.5)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for i, row in enumerate(rows):
        row["grad_norm"] = float("nan")  # every line: the panel's only run has nothing to draw
        row["entropy"] = float("inf") if i == 3 else row["entropy"]  # one line: that point is left out
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    warnings: list[str] = []
    figure = plot_runs([run], tmp_path / "curves.png", warn=warnings.append)
    assert warnings == [f"{run}: grad_norm is NaN or Inf on all 10 lines; its curve is left out"]
    panels = dict(zip([key for key, _ in CURVES], figure.axes, strict=False))
    assert panels["grad_norm"].get_lines() == []
    (entropy,) = panels["entropy"].get_lines()
    assert len(entropy.get_xdata()) == 9 and 4 not in list(entropy.get_xdata())
    assert (tmp_path / "curves.png").stat().st_size > 0
