"""The README stays true: its Python example runs, and every objective has a documentation page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dgpo.losses import LOSSES
from dgpo.metrics import OBJECTIVE_METRIC_KEYS
from dgpo.rewards import STATUSES

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_examples_run():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert len(blocks) >= 2
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_objective_has_a_page_and_a_readme_row(name):
    page = ROOT / "docs" / "objectives" / f"{name}.md"
    assert page.is_file()
    assert f'get_loss("{name}"' in page.read_text()
    assert f"[`{name}`](docs/objectives/{name}.md)" in (ROOT / "README.md").read_text()


def test_every_metric_key_is_documented():
    text = (ROOT / "docs" / "metrics.md").read_text()
    for key in OBJECTIVE_METRIC_KEYS:
        assert f"`{key}`" in text
    for key in ("loss/policy", "entropy", "kl/ref"):
        assert f"`{key}`" in text
    for status in (*STATUSES, "fast_path", "scored"):
        assert f"`reward/{status}`" in text
