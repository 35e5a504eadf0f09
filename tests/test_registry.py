"""The registry and the config dataclasses: names, defaults, range errors, import isolation."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from dgpo.losses import LOSSES, LossConfig, get_loss, register
from table import DEFAULTS

PAPER_ORDER = ["pg", "grpo", "dapo", "cispo", "gppo", "ce_gppo", "aspo", "gspo", "sapo", "dgpo"]


def test_registry_holds_the_ten_objectives_in_order():
    assert list(LOSSES) == PAPER_ORDER


@pytest.mark.parametrize("name", PAPER_ORDER)
def test_defaults_match_design_table(name):
    config = LOSSES[name]()
    assert dataclasses.asdict(config) == DEFAULTS[name]
    assert get_loss(name).config == config


def test_unknown_objective_lists_every_valid_name():
    with pytest.raises(ValueError, match="unknown objective 'nope'") as info:
        get_loss("nope")
    for name in PAPER_ORDER:
        assert name in str(info.value)


def test_unknown_parameter_lists_the_objectives_parameters():
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) k for objective 'dgpo'; valid parameters: n, m"):
        get_loss("dgpo", k=2)
    with pytest.raises(ValueError, match=r"valid parameters: \(none\)"):
        get_loss("pg", eps_low=0.2)


BAD_VALUES = [
    ("grpo", {"eps_low": 0.0}, r"GRPOLossConfig.eps_low must be in \(0, 1\), got 0.0"),
    ("grpo", {"eps_low": 1.0}, r"GRPOLossConfig.eps_low must be in \(0, 1\)"),
    ("dapo", {"eps_low": -0.1}, r"DAPOLossConfig.eps_low must be in \(0, 1\)"),
    ("grpo", {"eps_high": 0.0}, r"GRPOLossConfig.eps_high must be > 0"),
    ("grpo", {"dual_clip_c": 1.1}, r"GRPOLossConfig.dual_clip_c must be > 1 \+ eps_high = 1.2 or None, got 1.1"),
    ("cispo", {"eps_low": 0.0}, r"CISPOLossConfig.eps_low must be > 0"),
    ("cispo", {"eps_high": -1.0}, r"CISPOLossConfig.eps_high must be > 0"),
    ("gppo", {"dual_clip_c": 1.28}, r"GPPOLossConfig.dual_clip_c must be > 1 \+ eps_high = 1.28"),
    ("ce_gppo", {"beta1": 0.0}, r"CEGPPOLossConfig.beta1 must be > 0"),
    ("ce_gppo", {"beta2": -1.0}, r"CEGPPOLossConfig.beta2 must be > 0"),
    ("aspo", {"dual_clip_c": None}, r"ASPOLossConfig.dual_clip_c must be > 1 \+ eps_high"),
    ("aspo", {"dual_clip_c": 1.0}, r"ASPOLossConfig.dual_clip_c must be > 1 \+ eps_high = 1.2"),
    ("gspo", {"eps_low": 1.5}, r"GSPOLossConfig.eps_low must be in \(0, 1\)"),
    ("sapo", {"tau_pos": 0.0}, r"SAPOLossConfig.tau_pos must be > 0"),
    ("sapo", {"tau_neg": -2.0}, r"SAPOLossConfig.tau_neg must be > 0"),
    ("dgpo", {"n": 0.0}, r"DGPOLossConfig.n must be > 0, got 0.0"),
    ("dgpo", {"m": -1.0}, r"DGPOLossConfig.m must be > 0"),
    ("dgpo", {"eps_low": 1.0}, r"DGPOLossConfig.eps_low must be in \(0, 1\)"),
    ("dgpo", {"n": float("nan")}, r"DGPOLossConfig.n must be finite"),
    ("dgpo", {"eps_high": float("inf")}, r"DGPOLossConfig.eps_high must be finite"),
]


@pytest.mark.parametrize(("name", "params", "message"), BAD_VALUES)
def test_out_of_range_values_name_the_field_and_range(name, params, message):
    with pytest.raises(ValueError, match=message):
        get_loss(name, **params)


@pytest.mark.parametrize("value", [True, "0.2", [0.2]])
def test_non_numbers_are_rejected(value):
    with pytest.raises(TypeError, match=r"DGPOLossConfig\.eps_low must be a number"):
        get_loss("dgpo", eps_low=value)


def test_valid_edge_values_are_accepted():
    # CISPO: eps_low >= 1 means no lower bound, and a cap of 5 on r is eps_high = 4 (MiniMax-M1).
    assert get_loss("cispo", eps_low=1.0, eps_high=4.0).config.eps_high == 4.0
    assert get_loss("grpo", dual_clip_c=3).config.dual_clip_c == 3
    assert get_loss("gppo", dual_clip_c=None).config.dual_clip_c is None
    assert get_loss("dgpo", n=2, m=2).config.n == 2


def test_configs_are_frozen():
    config = get_loss("dgpo").config
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.n = 3.0


def test_duplicate_registration_raises():
    @dataclasses.dataclass(frozen=True)
    class Dummy(LossConfig):
        pass

    with pytest.raises(ValueError, match="objective 'dgpo' is already registered"):
        register("dgpo", Dummy)(lambda *args: None)
    assert "dgpo" in LOSSES and LOSSES["dgpo"] is not Dummy


def test_core_modules_import_torch_only():
    code = (
        "import sys, dgpo.losses, dgpo.advantages, dgpo.aggregation, dgpo.metrics\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('trl', 'transformers', 'verl', 'datasets', 'typer')]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
