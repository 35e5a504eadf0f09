"""`dgpo train` under torchrun with 2 CPU processes (gloo): rank 0 writes the run once, one metrics line per step,
one progress bar, identical final parameters on both ranks, kill -9 and --resume; `dgpo eval`/`compare` refuse."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil  # an accelerate dependency
import pytest
import yaml
from typer.testing import CliRunner

from dgpo.cli import app

#: Tiny and quick: 1-digit task, 60 warm-start steps of 16 examples, 4 RL steps checkpointed every 2. 8 completions
#: per process, so the global generation batch (8 × 2 processes) holds 4 full groups of num_generations = 4 (TRL).
CONFIG = {
    "task": {"digits": 1, "train_size": 70, "test_size": 20},
    "warm_start": {"steps": 60, "batch_size": 16},
    "rl": {
        "max_steps": 4,
        "save_steps": 2,
        "per_device_train_batch_size": 8,
        "num_generations": 4,
        "reward_workers": 1,
    },
    "held_out": {"k": 2, "max_new_tokens": 48},
}
STEPS = [1, 2, 3, 4]
#: Timing and counters that legitimately differ between an interrupted and an uninterrupted run.
VOLATILE = {"step_time", "train_runtime", "train_samples_per_second", "train_steps_per_second", "epoch"}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "DGPO_TORCH_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(*args: str) -> list[str]:
    """``torchrun --nproc_per_node 2`` on a free port, running ``args`` (a script or ``-m module ...``)."""
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master-port", str(free_port()),
            *args]  # fmt: skip


def kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL torchrun's process group and every descendant's: torchrun starts each rank in its own session, so
    killing torchrun's group alone would leave the ranks training on as orphans."""
    with contextlib.suppress(psutil.NoSuchProcess):
        for child in psutil.Process(process.pid).children(recursive=True):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(os.getpgid(child.pid), signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def launch(args: list[str], log: Path) -> subprocess.Popen:
    with log.open("w") as handle:
        return subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True, env=ENV)


def run_to_end(args: list[str], log: Path, timeout: float = 240) -> tuple[int, str]:
    """Run a launcher command to completion (killed with all its ranks on a timeout or a test failure)."""
    process = launch(args, log)
    try:
        process.wait(timeout=timeout)
    finally:
        kill_tree(process)
    return process.returncode, log.read_text()


def train(*args: str) -> list[str]:
    return torchrun("-m", "dgpo.cli", "train", *args)


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """One uninterrupted 2-process run of the embedded default (warm start, held-out before/after, RL)."""
    tmp = tmp_path_factory.mktemp("mp")
    config = tmp / "small.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    code, output = run_to_end(train("--config", str(config), "--output-dir", str(tmp / "run")), tmp / "straight.log")
    assert code == 0, output
    return tmp / "run", output


@pytest.mark.slow
def test_two_processes_write_one_run(straight):
    run, output = straight
    assert [m["step"] for m in read_metrics(run)] == STEPS  # one line per step, not one per rank
    written = ("config.yaml", "warm_start/model.safetensors", "final/model.safetensors", "final/dgpo_tiny.json",
               "checkpoints/checkpoint-2/rng_state_1.pth", "held_out_before.json", "held_out_after.json")  # fmt: skip
    for name in written:
        assert (run / name).exists(), name
    assert not list(run.rglob("*.partial")) and not list(run.rglob("*.tmp"))
    results = json.loads((run / "results.json").read_text())
    assert results["processes"] == 2 and results["parameters_identical"] is True
    assert results["before"]["items"] == results["after"]["items"] == 20
    lines = output.splitlines()
    assert sum(line.startswith("RL ") for line in lines) == 1, output  # one progress bar
    for once in ("warm start: 60 steps", "held-out before RL", "held-out after RL", "Held-out accuracy",
                 "final parameters identical on all 2 processes"):  # fmt: skip
        assert output.count(once) == 1, (once, output)


#: The countdown task on 2 processes: 8 completions per process, so the global batch holds 4 groups of 4.
COUNTDOWN = {
    "task": {"name": "countdown", "train_size": 200, "test_size": 16},
    "warm_start": {"steps": 30, "batch_size": 8},
    "rl": {"max_steps": 2, "save_steps": 2, "per_device_train_batch_size": 8, "num_generations": 4,
           "max_completion_length": 48},
    "held_out": {"k": 1, "max_new_tokens": 48},
}  # fmt: skip


@pytest.mark.slow
def test_countdown_trains_on_two_processes_with_its_own_reward(tmp_path):
    config = tmp_path / "countdown.yaml"
    config.write_text(yaml.safe_dump(COUNTDOWN))
    code, output = run_to_end(train("--config", str(config), "--output-dir", str(tmp_path / "run")), tmp_path / "log")
    assert code == 0, output
    metrics = read_metrics(tmp_path / "run")
    assert [m["step"] for m in metrics] == [1, 2]  # one line per step, not one per rank
    assert 0.0 <= metrics[0]["rewards/countdown_reward/mean"] <= 1.0  # the countdown reward, not the math one
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["processes"] == 2 and results["parameters_identical"] is True
    assert results["before"]["items"] == results["after"]["items"] == 16
    assert output.count("held-out after RL") == 1  # rank 0 evaluates and reports once


@pytest.mark.slow
def test_a_start_up_error_ends_every_rank_with_one_line(straight):
    run, _ = straight
    config = run.parent / "small.yaml"
    code, output = run_to_end(train("--config", str(config), "--output-dir", str(run)), run.parent / "again.log", 120)
    assert code != 0
    assert output.count("error:") == 1 and "already holds a run" in output, output
    assert "exitcode  : 2" in output  # torchrun's summary: the ranks exited with the CLI's code, none hung


@pytest.mark.slow
def test_kill_9_then_resume_gives_one_line_per_step_and_the_same_metrics(straight, tmp_path):
    run, _ = straight
    killed = tmp_path / "killed"  # the same run, sharing the straight run's warm start and held-out "before"
    killed.mkdir()
    shutil.copytree(run / "warm_start", killed / "warm_start")
    shutil.copy(run / "held_out_before.json", killed / "held_out_before.json")
    used = yaml.safe_load((run / "config.yaml").read_text())
    (killed / "config.yaml").write_text(yaml.safe_dump({**used, "output_dir": str(killed)}))

    process = launch(train("--resume", str(killed)), tmp_path / "killed.log")
    marker = killed / "checkpoints" / "checkpoint-2" / "dgpo_checkpoint_complete"
    try:
        deadline = time.monotonic() + 180
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert marker.exists(), (tmp_path / "killed.log").read_text()
    finally:
        kill_tree(process)
    assert not (killed / "results.json").exists(), "the kill should land mid-run"

    code, output = run_to_end(train("--resume", str(killed)), tmp_path / "resumed.log")
    assert code == 0, output
    assert "resuming from" in output and "checkpoint-2" in output, output
    assert sum(line.startswith("RL ") for line in output.splitlines()) == 1, output
    expected, got = read_metrics(run), read_metrics(killed)
    assert [m["step"] for m in got] == STEPS
    for want, have in zip(expected, got, strict=True):
        keys = set(want) - VOLATILE
        assert keys == set(have) - VOLATILE
        for key in keys:
            assert have[key] == pytest.approx(want[key], rel=1e-6, abs=1e-9), (want["step"], key)
    results = json.loads((killed / "results.json").read_text())
    assert results["processes"] == 2 and results["parameters_identical"] is True


RANK_HELPERS = """
import torch
from dgpo import distributed

distributed.init_process_group()
assert distributed.world_size() == 2
assert distributed.broadcast_object("from rank 0" if distributed.is_main() else None) == "from rank 0"

def fails():
    raise ValueError("rl.max_steps must be >= 1")

try:
    distributed.on_main(fails)
except ValueError as err:
    assert str(err) == "rl.max_steps must be >= 1"
else:
    raise AssertionError("on_main swallowed rank 0's error")
torch.manual_seed(0)
model = torch.nn.Linear(3, 2)
distributed.check_same_parameters(model)
if distributed.rank() == 1:
    with torch.no_grad():
        model.bias[0] += 1e-7
try:
    distributed.check_same_parameters(model)
except RuntimeError as err:
    assert "final parameters differ" in str(err) and "bias" in str(err), err
else:
    raise AssertionError("a drifted replica went unnoticed")
print(f"rank {distributed.rank()} ok")
distributed.close()
"""


@pytest.mark.slow
def test_rank_helpers_share_results_errors_and_catch_drifted_parameters(tmp_path):
    script = tmp_path / "helpers.py"
    script.write_text(RANK_HELPERS)
    code, output = run_to_end(torchrun(str(script)), tmp_path / "helpers.log", 120)
    assert code == 0, output
    assert "rank 0 ok" in output and "rank 1 ok" in output


@pytest.mark.parametrize(
    "args",
    [["eval", "--model", "some/model", "--out", "out"], ["compare", "--out", "out", "--quick"]],
    ids=["eval", "compare"],
)
def test_eval_and_compare_refuse_to_run_under_a_launcher(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, args, env={"WORLD_SIZE": "2"})
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error:"), result.output
    assert f"run dgpo {args[0]} as a single process" in result.output
    assert not any(tmp_path.iterdir())  # refused before any work
