"""`dgpo eval` end to end on the tiny local model: pipeline, counts, resume, kill-and-resume, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from dgpo.cli import app
from dgpo.data import BENCHMARKS
from dgpo.eval import EvalConfig, run_eval
from polling import wait_for

FAST = {"max_new_tokens": 6, "temperature": 1.0, "reward_workers": 1}


def read_samples(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_pipeline_counts_and_resume(tiny_model_dir, tmp_path):
    out = tmp_path / "eval"
    cfg = EvalConfig(model=str(tiny_model_dir), out=str(out), k=2, limit=3, batch_size=6, **FAST)
    results = run_eval(cfg, console=Console(quiet=True), progress=False)

    samples = read_samples(out / "samples.jsonl")
    assert len(samples) == 6 * 3 * 2  # six benchmarks × 3 problems × k = 2
    keys = {(s["benchmark"], s["id"], s["sample"]) for s in samples}
    assert len(keys) == len(samples)
    assert {s["benchmark"] for s in samples} == set(BENCHMARKS)
    assert all(s["status"] in ("correct", "incorrect", "no_answer", "too_long", "timeout", "error") for s in samples)
    assert set(results["benchmarks"]) == set(BENCHMARKS) and results["k"] == 2
    for entry in results["benchmarks"].values():
        assert entry["problems"] == 3 and set(entry["pass"]) == {1, 2}
    assert json.loads((out / "results.json").read_text())["k"] == 2
    table = (out / "results.md").read_text()
    assert "| Model | AIME24 | AIME25 | AMC23 | MATH500 | Minerva | OlympiadBench | Avg. |" in table

    # Re-running with a larger k generates only the missing samples and keeps the old ones byte for byte.
    before = (out / "samples.jsonl").read_bytes()
    run_eval(
        EvalConfig(model=str(tiny_model_dir), out=str(out), k=3, limit=3, batch_size=6, **FAST),
        console=Console(quiet=True),
        progress=False,
    )
    after = (out / "samples.jsonl").read_bytes()
    assert after.startswith(before)
    assert len(read_samples(out / "samples.jsonl")) == 6 * 3 * 3

    # Resuming with other generation settings is refused.
    with pytest.raises(ValueError, match=r"other settings \(temperature: 1.0 → 0.5\)"):
        run_eval(EvalConfig(model=str(tiny_model_dir), out=str(out), k=3, limit=3, temperature=0.5, max_new_tokens=6))


def test_torn_last_line_is_repaired_on_resume(tiny_model_dir, tmp_path):
    out = tmp_path / "eval"
    cfg = EvalConfig(model=str(tiny_model_dir), out=str(out), benchmarks=["amc23"], k=2, limit=2, **FAST)
    run_eval(cfg, console=Console(quiet=True), progress=False)
    path = out / "samples.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # a kill mid-write
    run_eval(cfg, console=Console(quiet=True), progress=False)
    samples = read_samples(path)
    assert len(samples) == 4 and len({(s["id"], s["sample"]) for s in samples}) == 4


@pytest.mark.slow
def test_kill_and_resume_loses_and_repeats_nothing(tiny_model_dir, tmp_path):
    out = tmp_path / "eval"
    command = [
        sys.executable, "-m", "dgpo.cli", "eval", "--model", str(tiny_model_dir), "--out", str(out),
        "--benchmarks", "math500,amc23", "--k", "4", "--limit", "6", "--max-new-tokens", "24",
        "--temperature", "1.0", "--batch-size", "2",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    path = out / "samples.jsonl"
    # Killed as soon as 6 of the 48 samples are on disk.
    try:
        six_lines = lambda: path.exists() and path.read_bytes().count(b"\n") >= 6  # noqa: E731
        wait_for(six_lines, process, "6 lines in samples.jsonl", give_up_s=300)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    kept = path.read_bytes()
    kept = kept[: kept.rfind(b"\n") + 1]
    assert 6 <= kept.count(b"\n") < 2 * 6 * 4, "the kill should land mid-run"

    finished = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert finished.returncode == 0, finished.stderr
    data = path.read_bytes()
    assert data.startswith(kept)  # nothing lost
    samples = read_samples(path)
    keys = [(s["benchmark"], s["id"], s["sample"]) for s in samples]
    assert len(keys) == 2 * 6 * 4 and len(set(keys)) == len(keys)  # nothing repeated, nothing missing


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--benchmarks", "aime24,gsm9k"], "unknown benchmark(s) gsm9k; valid benchmarks: aime24"),
        (["--k", "0"], "k must be >= 1, got 0"),
        (["--top-p", "0"], "top_p must be in (0, 1]"),
    ],
)
def test_cli_errors(tiny_model_dir, tmp_path, args, message):
    result = CliRunner().invoke(app, ["eval", "--model", str(tiny_model_dir), "--out", str(tmp_path), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_missing_model_path_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["eval", "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "model path not found" in " ".join(result.output.split())


def test_k_larger_than_the_samples_present(tiny_model_dir, tmp_path):
    out = tmp_path / "eval"
    cfg = EvalConfig(model=str(tiny_model_dir), out=str(out), benchmarks=["aime25"], k=2, limit=2, **FAST)
    run_eval(cfg, console=Console(quiet=True), progress=False)
    runner = CliRunner()
    base = ["eval", "--model", str(tiny_model_dir), "--out", str(out), "--benchmarks", "aime25", "--limit", "2"]
    same = [*base, "--max-new-tokens", "6", "--temperature", "1.0", "--summary-only"]
    assert runner.invoke(app, [*same, "--k", "2"]).exit_code == 0
    result = runner.invoke(app, [*same, "--k", "4"])
    assert result.exit_code == 2
    assert "k=4 is larger than the samples present" in " ".join(result.output.split())
