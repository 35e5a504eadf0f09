"""docs/design.md "Add an objective", run as written: a new objective is a new module and a reference, no core edit.

The two code blocks of that section are extracted from the page, the module is written to a temporary folder added
to ``dgpo.losses``' package path and discovered by :func:`dgpo.losses.import_objective_modules` (as a file placed in
``src/dgpo/losses/`` would be), and the reference is executed in :mod:`dgpo.losses.reference`'s namespace. Every
trace of it is removed afterwards, so the registry-wide tests see the paper's objectives only.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch

import dgpo.losses
from dgpo.losses import LOSS_FUNCTIONS, LOSSES, get_loss, import_objective_modules, reference
from dgpo.metrics import OBJECTIVE_METRIC_KEYS

DESIGN = Path(__file__).resolve().parents[1] / "docs" / "design.md"


def code_block(first_line: str) -> str:
    """The ```python block of the "Add an objective" section whose first line is ``first_line``."""
    section = DESIGN.read_text().split("### Add an objective", 1)[1].split("\n## ", 1)[0]
    for block in re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL):
        if block.startswith(first_line):
            return block
    raise AssertionError(f"docs/design.md 'Add an objective' has no python block starting with {first_line!r}")


@pytest.fixture
def tis_pg(tmp_path, monkeypatch):
    (tmp_path / "tis_pg.py").write_text(code_block("# src/dgpo/losses/tis_pg.py"))
    monkeypatch.setattr(dgpo.losses, "__path__", [*dgpo.losses.__path__, str(tmp_path)])
    import_objective_modules()
    exec(code_block("# src/dgpo/losses/reference.py"), vars(reference))  # the docs' own code
    yield
    for table in (LOSSES, LOSS_FUNCTIONS, reference.REFERENCES):
        table.pop("tis_pg", None)
    vars(reference).pop("tis_pg", None)
    sys.modules.pop("dgpo.losses.tis_pg", None)


def test_the_documented_objective_registers_and_matches_its_reference(tis_pg):
    assert list(LOSSES)[-1] == "tis_pg"  # after the paper's objectives
    g = torch.Generator().manual_seed(0)
    old = -torch.rand(4, 7, generator=g, dtype=torch.float64) * 3
    logp = (old + torch.randn(4, 7, generator=g, dtype=torch.float64)).requires_grad_(True)
    adv = torch.randn(4, generator=g, dtype=torch.float64)
    mask = torch.ones(4, 7, dtype=torch.float64)
    mask[1, 4:] = 0
    assert bool(((logp - old).exp() > 1.5).any()) and bool(((logp - old).exp() < 1.5).any())  # both sides of c

    loss, terms = get_loss("tis_pg", c=1.5)(logp, old, adv, mask)
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    expected = reference.REFERENCES["tis_pg"](logp, old, adv, mask, c=1.5)
    (expected_grad,) = torch.autograd.grad(expected.sum(), logp)
    torch.testing.assert_close(loss, expected.detach(), rtol=0, atol=1e-12)
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=1e-12)
    assert set(terms) == set(OBJECTIVE_METRIC_KEYS)


def test_the_documented_objective_checks_its_parameter(tis_pg):
    with pytest.raises(ValueError, match=r"TISPGLossConfig\.c must be > 0, got 0"):
        get_loss("tis_pg", c=0)
    with pytest.raises(ValueError, match=r"valid objectives: .*tis_pg"):
        get_loss("tis_pg_typo")
