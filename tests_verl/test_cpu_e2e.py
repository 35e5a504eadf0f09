"""verl's whole trainer (``python -m verl.trainer.main_ppo``, RayPPOTrainer) with a dgpo loss, end to end on CPU.

``examples/verl/cpu_e2e.sh`` runs Hydra composition, Ray workers, the hf_cpu rollout server and agent loop, the
reward loop, GRPO advantages, old log-probs, the FSDP2 actor update with the plugin's loss, weight sync and
checkpoints. Three launches: RayPPOTrainer (the recipe's ``trainer.use_v1=false``) on 1 rank with ``loss_mode=dgpo``
for 3 steps saving every 2, beside verl's default v1 trainer (TransferQueue) on 2 ranks and 2 rollout replicas with
``loss_mode=dgpo_cispo`` for 2 steps; once the first has ended, its resume to 4 steps.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dgpo.integrations.verl_cpu.launch import main as launch_main
from dgpo.integrations.verl_cpu.task import prepare

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "verl" / "cpu_e2e.sh"
LAUNCH_TIMEOUT_S = 400
GRAD_SHARES = [f"actor/dgpo/grad_share/{region}" for region in ("inside", "ln", "hp", "lp", "hn")]
#: The rollout's log-probs against the actor's recomputation after each weight sync (fp32 both sides).
MISMATCH = 1e-4


def launch(out_dir: Path, *overrides: str, task: Path | None = None) -> subprocess.Popen:
    """The script in its own session; ``task``: a prepared task folder to use instead of building OUT_DIR/task."""
    env = {**os.environ, "VERL_PYTHON": sys.executable, "PYTHONPATH": str(ROOT / "src")}
    if task is not None:
        overrides = (f"actor_rollout_ref.model.path={task}/model", f"data.train_files={task}/train.parquet",
                     f"data.val_files={task}/val.parquet", *overrides)  # fmt: skip
    log = open(out_dir.with_suffix(".log"), "a")  # noqa: SIM115  (closed with the process: the child holds it)
    return subprocess.Popen(
        ["bash", str(SCRIPT), str(out_dir), *overrides], env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def finish(procs: dict[str, tuple[subprocess.Popen, Path]]) -> None:
    """Wait for every launch; on a timeout kill its whole process group (Ray included); fail with the log tail."""
    try:
        for proc, _ in procs.values():
            proc.wait(timeout=LAUNCH_TIMEOUT_S)
    finally:
        for proc, _ in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    for name, (proc, out_dir) in procs.items():
        tail = out_dir.with_suffix(".log").read_text()[-3000:]
        assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{tail}"


def read_metrics(out_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, list[dict]]:
    tmp = tmp_path_factory.mktemp("cpu_e2e")
    one, two, shared = tmp / "one_rank", tmp / "two_ranks", prepare(tmp / "task")
    first = {
        "one_rank": (launch(one, "trainer.total_training_steps=3", "trainer.save_freq=2", task=shared), one),
        # verl's default v1 trainer (TransferQueue) with 2 FSDP2 ranks and 2 rollout replicas; it builds its own task
        "two_ranks": (
            launch(two, "actor_rollout_ref.actor.policy_loss.loss_mode=dgpo_cispo", "trainer.total_training_steps=2",
                   "trainer.n_gpus_per_node=2", "trainer.use_v1=true"),
            two,
        ),
    }  # fmt: skip
    # the start-up is mostly waiting (processes starting one after another), so the launches overlap; the resume
    # starts as soon as the run it resumes has ended
    first["one_rank"][0].wait(timeout=LAUNCH_TIMEOUT_S)
    before_resume = read_metrics(one) if first["one_rank"][0].returncode == 0 else []
    resumed = (launch(one, "trainer.total_training_steps=4", "trainer.save_freq=2", task=shared), one)
    finish({**first, "resumed": resumed})
    return {
        "one_rank": before_resume,
        "resumed": read_metrics(one),
        "two_ranks": read_metrics(two),
        "two_ranks_dir": two,
        "one_rank_dir": one,
        "resume_log": one.with_suffix(".log").read_text(),
        "checkpoints": sorted(p.name for p in (one / "checkpoints").iterdir()),
    }


def steps(lines: list[dict]) -> list[int]:
    return [line["step"] for line in lines]


def test_one_metrics_line_per_training_step(runs):
    assert steps(runs["one_rank"]) == [1, 2, 3]
    assert steps(runs["two_ranks"]) == [1, 2]
    assert (runs["two_ranks_dir"] / "task" / "model").is_dir()  # given no model and data, the launcher builds them
    assert not (runs["one_rank_dir"] / "task").exists()  # given them, it builds none


def test_resume_continues_at_the_next_step_and_trains_no_step_twice(runs):
    """verl's checkpoint at step 3 (the last step saves too) and resume_mode=auto: the second launch trains step 4
    only, and metrics.jsonl keeps steps 1–3 (verl's file logger would truncate it; the shim appends)."""
    assert steps(runs["resumed"]) == [1, 2, 3, 4]
    assert runs["resumed"][:3] == runs["one_rank"]
    assert "global_step_3" in runs["checkpoints"] and "global_step_4" in runs["checkpoints"]
    assert "global_step_1" not in runs["checkpoints"]


@pytest.mark.parametrize("run", ["resumed", "two_ranks"])
def test_the_plugin_loss_trained_every_step(runs, run):
    for line in runs[run]:
        data = line["data"]
        assert data["actor/grad_norm"] > 0, line["step"]
        for key in ("actor/dgpo/ratio/mean", "actor/dgpo/region/inside", "actor/dgpo/weight/vs_pg_max"):
            assert key in data, key
        # verl averages each loss metric over the updates of a step (mini-batches × micro-batches × ranks); each
        # update's shares sum to 1 (or 0 when all its advantages are 0), so the step's sum is a multiple of 1/k
        share_sum = sum(data[key] for key in GRAD_SHARES)
        assert 0 < share_sum <= 1 + 1e-6, (line["step"], share_sum)
        updates = 2 * (2 if run == "two_ranks" else 1)  # ppo_mini_batch_size=4 of 8 prompts: 2 updates per rank
        assert any(math.isclose(share_sum, k / updates, abs_tol=1e-6) for k in range(1, updates + 1)), share_sum


@pytest.mark.parametrize("run", ["resumed", "two_ranks"])
def test_rollout_log_probs_match_the_actor_after_every_weight_sync(runs, run):
    for line in runs[run]:
        data = line["data"]
        assert data["training/rollout_probs_diff_max"] <= MISMATCH, line["step"]
        assert abs(data["rollout_corr/log_ppl_diff_max"]) <= MISMATCH, line["step"]
        assert abs(data["rollout_corr/log_ppl_diff_min"]) <= MISMATCH, line["step"]


def test_responses_end_on_eos_and_at_the_length_limit(runs):
    """The warm start stops about half the samples with EOS: the batch holds both kinds of response."""
    for run in ("one_rank", "two_ranks"):
        first = runs[run][0]["data"]
        assert 0 < first["response_length/clip_ratio"] < 1, first["response_length/clip_ratio"]
        assert first["response_length/min"] < first["response_length/max"]


def test_two_ranks_run_the_requested_objective(runs):
    # dgpo_cispo keeps a weight on every token: no token has zero weight, so pg_clipfrac counts LN ∪ HP only
    assert all("actor/dgpo/region/ln" in line["data"] for line in runs["two_ranks"])


BAD_OVERRIDES = [
    # (arguments after OUT_DIR, what the one error line must name)
    (["actor_rollout_ref.actor.no_such_key=1"], "no_such_key"),
    (["trainer.total_training_steps"], "KEY=VALUE"),
    (["trainer.n_gpus_per_node=0"], "n_gpus_per_node"),
    (["trainer.nnodes=-1"], "n_gpus_per_node"),
    (["trainer.total_training_steps=[1"], "verl rejects"),
    (["data.train_batch_size=3"], "verl rejects"),  # verl's validate_config: batch sizes must divide
]


@pytest.mark.parametrize(("args", "named"), BAD_OVERRIDES)
def test_a_bad_override_is_one_error_line_and_leaves_nothing(tmp_path, capsys, args, named):
    """Checked in-process (the launcher the script runs): Hydra's verdict, before any file or Ray process."""
    assert launch_main([str(tmp_path / "out"), *args]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], lines
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        ([], {"VERL_PYTHON": "/nonexistent/python"}, "no verl environment"),
        ([], {"VERL_PYTHON": "/bin/false"}, "cannot import verl"),
        (None, {}, "OUT_DIR"),
    ],
)
def test_the_script_refuses_a_missing_environment_or_folder_in_one_line(tmp_path, args, env, named):
    environment = {**os.environ, "VERL_PYTHON": sys.executable, **env}
    argv = ["bash", str(SCRIPT)] + ([] if args is None else [str(tmp_path / "out"), *args])
    result = subprocess.run(argv, env=environment, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], result.stderr
    assert not (tmp_path / "out").exists()
