"""benchmarks/gpu_check.py cannot rot: its --dry-run runs every part on CPU at tiny shapes; on a GPU, the real one."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_dry_run_runs_every_part_and_writes_json_and_markdown(tmp_path):
    gpu_check = load_script()
    results = gpu_check.main(["--dry-run", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "gpu_check.json").read_text())
    assert saved["mode"] == "dry run" and set(gpu_check.PARTS) <= saved.keys()
    failed = {part: saved[part] for part in gpu_check.PARTS if isinstance(saved[part], dict)}
    assert not failed, failed  # a part that raised is recorded as {"error": ...}
    from dgpo.losses import LOSSES

    assert {(r["objective"], r["dtype"]) for r in results["objectives"]} == {
        (name, dtype) for name in LOSSES for dtype in ("float32", "bfloat16")
    }
    assert all(r["ok"] for r in results["objectives"]), results["objectives"]
    assert all(r["syncs"] is None for r in results["syncs"])  # counted on CUDA only
    paths = {r["path"] for r in results["logprobs"]}
    assert paths == {"full_logits", "trl_chunked_triton", "token_tiles_512"}
    trainers = {r["trainer"]: r for r in results["trainer"]}
    assert set(trainers) == {"grpo_trainer", "dgpo_trainer"} and trainers["dgpo_trainer"]["steps"] == 2
    table = (tmp_path / "gpu_check.md").read_text()
    assert "| `dgpo` | bfloat16 |" in table and "| dgpo_trainer |" in table


def test_a_full_run_without_a_gpu_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exit_info:
        load_script().main(["--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "no CUDA device: run on a GPU, or give --dry-run" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_objectives_on_cuda_match_the_float64_reference(tmp_path):
    results = load_script().main(["--only", "objectives", "--only", "syncs", "--out", str(tmp_path)])
    assert all(r["ok"] for r in results["objectives"]), results["objectives"]
