"""The command line: `dgpo weights` (the demo until the trainer exists)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from dgpo.cli import app
from dgpo.diagnostics import weight_vs_pg
from dgpo.losses import LOSSES

runner = CliRunner()


def test_weights_prints_every_objective():
    result = runner.invoke(app, ["weights"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for name in LOSSES:
        assert f"│ {name} " in result.output
    # CISPO/GPPO at r = 1e-4 on LN: w/r = 0.8/1e-4 = 8000; DGPO: 1e-4/0.8 = 0.000125
    assert "8e+03" in result.output and "0.000125" in result.output


def test_weights_accepts_custom_ratios_and_objectives():
    result = runner.invoke(app, ["weights", "--objectives", "dgpo,cispo", "--ln-ratios", "0.4", "--hp-ratios", "3"])
    assert result.exit_code == 0, result.output
    assert "r=0.4" in result.output and "r=3" in result.output and "grpo" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--objectives", "dgpo,nope"], "unknown objective 'nope'; valid objectives: pg, grpo"),
        (["--ln-ratios", "0.5,abc"], "must be comma-separated numbers"),
        (["--hp-ratios", "-2"], "must be positive ratios"),
    ],
)
def test_weights_rejects_bad_options(args, message):
    result = runner.invoke(app, ["weights", *args], terminal_width=200)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_weight_vs_pg_values():
    # DGPO LN, n = 1: (r/0.8); HP, m = 2: sqrt(1.2·r)/r
    assert weight_vs_pg("dgpo", [0.4], -1.0) == pytest.approx([0.5], rel=1e-14)
    assert weight_vs_pg("dgpo", [4.8], 1.0) == pytest.approx([(1.2 * 4.8) ** 0.5 / 4.8], rel=1e-14)
    assert weight_vs_pg("grpo", [0.4, 4.8], -1.0) == [0.0, 1.0]  # LN clipped; HN keeps r (no dual-clip)
    with pytest.raises(ValueError, match="advantage must be non-zero"):
        weight_vs_pg("dgpo", [0.5], 0.0)


def test_help_explains_the_commands():
    result = runner.invoke(app, ["--help"], terminal_width=200)
    assert result.exit_code == 0 and "weights" in result.output
