"""Bad inputs to every command: exit code 2, exactly one ``error:`` line naming the file, key or option, no traceback,
and nothing on disk changed or left behind. Plus what must keep working: resume from another directory after a
move, ``--overwrite`` of a real run, failed starts that leave no trace, ``--debug``.

Each table row is (id, CLI args, files to create first, expected part of the error line); every row runs in its
own empty working directory (relative paths), whose files are snapshotted before and after.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from dgpo.cli import app
from dgpo.train.run_config import RunConfig, config_text, load_config, save_config

runner = CliRunner()
ANSI = re.compile(r"\x1b\[[0-9;]*m")
ROW = json.dumps({"problem": "1 + 1 = ?", "answer": "2", "solution": "1+1=2. \\boxed{2}"})
RUN_CONFIG = config_text(RunConfig())  # a valid config.yaml of a dgpo run

#: (id, args, files: path → text, or a path ending in "/" for a directory, expected part of the error line)
CASES = [
    # config files
    ("yaml-malformed", ["train", "--config", "bad.yaml"], {"bad.yaml": "seed: 1: 2\n"},
     "config file bad.yaml is not valid YAML"),
    ("yaml-top-level-list", ["train", "--config", "list.yaml"], {"list.yaml": "- rl\n- seed\n"},
     "config file list.yaml must hold a mapping"),
    ("yaml-wrong-type", ["train", "--config", "c.yaml"], {"c.yaml": "rl: {max_steps: abc}\n"},
     "c.yaml: config key 'rl.max_steps' must be an integer, got 'abc'"),
    ("yaml-unknown-key", ["train", "--config", "c.yaml"], {"c.yaml": "rl: {objectiv: dgpo}\n"},
     "unknown config key 'rl.objectiv'"),
    ("yaml-missing", ["train", "--config", "nope.yaml"], {}, "config file not found: nope.yaml"),
    ("yaml-is-a-directory", ["train", "--config", "conf"], {"conf/": None}, "config file conf is a directory"),
    ("yaml-objective-kwarg-type", ["train", "--config", "c.yaml"], {"c.yaml": "rl: {objective_kwargs: {n: abc}}\n"},
     "rl.objective_kwargs: DGPOLossConfig.n must be a number, got 'abc'"),
    ("yaml-null-output-dir", ["train", "--config", "c.yaml"], {"c.yaml": "output_dir: null\n"},
     "config key 'output_dir' must be a string, got None"),
    ("yaml-bad-template", ["train", "--config", "c.yaml"], {"c.yaml": "template: '{problem} \\boxed{}'\n"},
     "template '{problem} \\\\boxed{}' has braces other than {problem}"),
    ("yaml-save-steps-off-cycle", ["train", "--config", "c.yaml"], {"c.yaml": "rl: {save_steps: 3}\n"},
     "rl.save_steps=3 must be a multiple of the generation cycle"),
    ("trl-partial-groups", ["train", "--config", "c.yaml"],
     {"c.yaml": "rl: {per_device_train_batch_size: 6, num_generations: 4}\n"},
     "TRL rejects the rl settings: generation_batch_size (6) must be divisible by num_generations (4)"),
    # training sets
    ("jsonl-row-2-lacks-answer", ["train", "--dataset", "d.jsonl"],
     {"d.jsonl": ROW + "\n" + json.dumps({"problem": "2 + 2 = ?"}) + "\n"},
     "training set d.jsonl line 2 lacks field(s) answer"),
    ("jsonl-all-answers-empty", ["train", "--dataset", "d.jsonl"],
     {"d.jsonl": json.dumps({"problem": "p", "answer": ""}) + "\n" + json.dumps({"problem": "q", "answer": " "})},
     "training set d.jsonl has no row with a non-empty answer"),
    ("jsonl-not-json", ["train", "--dataset", "d.jsonl"], {"d.jsonl": "problem,answer\n1+1,2\n"},
     "training set d.jsonl line 1 is not JSON"),
    ("jsonl-no-solution-for-warm-start", ["train", "--dataset", "d.jsonl"],
     {"d.jsonl": json.dumps({"problem": "p", "answer": "1"}) + "\n"}, "without a `solution` field"),
    ("dataset-name-without-file", ["train", "--dataset", "gsm8k"], {}, "dataset 'gsm8k' expects"),
    # models
    ("train-hub-model-offline", ["train", "--model", "nobody/nothing", "--dataset", "d.jsonl"], {"d.jsonl": ROW},
     "model nobody/nothing not found locally and the hub is offline"),
    ("eval-hub-model-offline", ["eval", "--model", "nobody/nothing", "--out", "ev"], {},
     "model nobody/nothing not found locally and the hub is offline"),
    ("model-dir-not-a-model", ["eval", "--model", "./empty", "--out", "ev"], {"empty/": None},
     "model path ./empty holds no config.json"),
    ("model-path-missing", ["train", "--model", "./none", "--dataset", "d.jsonl"], {"d.jsonl": ROW},
     "model path not found: ./none"),
    # run directories
    ("overwrite-victim", ["train", "--output-dir", "victim", "--overwrite"],
     {"victim/notes.txt": "mine", "victim/sub/": None},
     "victim holds files dgpo did not write (notes.txt, sub/); refusing to delete it"),
    ("start-in-foreign-dir", ["train", "--output-dir", "victim"], {"victim/notes.txt": "mine"},
     "victim holds files dgpo did not write (notes.txt); refusing to start a run in it"),
    ("output-dir-is-a-file", ["train", "--output-dir", "f.txt"], {"f.txt": "x"},
     "--output-dir f.txt exists and is not a directory"),
    ("resume-nothing-there", ["train", "--resume", "nowhere"], {}, "--resume nowhere: no dgpo run to resume there"),
    ("resume-foreign-files", ["train", "--resume", "victim"],
     {"victim/config.yaml": RUN_CONFIG, "victim/thesis.tex": "mine"},
     "victim holds files dgpo did not write (thesis.tex); refusing to resume a run in it"),
    ("resume-not-a-run-config", ["train", "--resume", "victim"], {"victim/config.yaml": "seed: 1\n"},
     "but a config.yaml that is not a dgpo run config"),
    ("resume-with-options", ["train", "--resume", "r", "--steps", "3"], {}, "drop the other options"),
    ("resume-and-overwrite", ["train", "--resume", "r", "--overwrite"], {}, "drop the other options"),
    # option ranges and click's own usage errors
    ("train-steps-0", ["train", "--steps", "0"], {}, "Invalid value for '--steps': rl.max_steps must be >= 1, got 0"),
    ("train-lr-0", ["train", "--lr", "0"], {}, "Invalid value for '--lr': rl.learning_rate must be > 0, got 0.0"),
    ("train-lr-inf", ["train", "--lr", "inf"], {},
     "Invalid value for '--lr': rl.learning_rate must be a finite number > 0, got inf"),
    ("yaml-lr-inf", ["train", "--config", "c.yaml"], {"c.yaml": "rl: {learning_rate: .inf}\n"},
     "c.yaml: rl.learning_rate must be a finite number > 0, got inf"),
    ("yaml-max-minutes-minus-inf", ["train", "--config", "c.yaml"], {"c.yaml": "rl: {max_minutes: -.inf}\n"},
     "c.yaml: rl.max_minutes must be a finite number > 0, got -inf"),
    ("yaml-temperature-inf", ["train", "--config", "c.yaml"], {"c.yaml": "held_out: {temperature: .inf}\n"},
     "c.yaml: held_out.temperature must be a finite number >= 0, got inf"),
    ("yaml-warm-start-lr-nan", ["train", "--config", "c.yaml"], {"c.yaml": "warm_start: {learning_rate: .nan}\n"},
     "c.yaml: warm_start.learning_rate must be a finite number > 0, got nan"),
    ("train-unknown-objective", ["train", "--objective", "nope"], {},
     "Invalid value for '--objective': unknown objective 'nope'"),
    ("train-eps-low-out-of-range", ["train", "--eps-low", "-1"], {},
     "Invalid value for '--eps-low': DGPOLossConfig.eps_low must be in (0, 1), got -1.0"),
    ("train-n-not-positive", ["train", "--objective", "dgpo", "--n", "0"], {},
     "Invalid value for '--n': DGPOLossConfig.n must be > 0, got 0.0"),
    ("yaml-objective-kwarg-range", ["train", "--config", "c.yaml"], {"c.yaml": "rl: {objective_kwargs: {m: -2}}\n"},
     "c.yaml: DGPOLossConfig.m must be > 0, got -2"),
    ("train-task-unknown", ["train", "--task", "sudoku"], {},
     "Invalid value for '--task': unknown task.name 'sudoku'; valid tasks: addition, countdown"),
    ("yaml-countdown-numbers", ["train", "--config", "c.yaml"], {"c.yaml": "task: {name: countdown, numbers: 9}\n"},
     "task.numbers must be in 2..4, got 9"),
    ("yaml-countdown-targets", ["train", "--config", "c.yaml"],
     {"c.yaml": "task: {name: countdown, min_target: 90, max_target: 10}\n"},
     "need 1 <= task.min_target <= task.max_target, got 90..10"),
    ("compare-task-unknown", ["compare", "--out", "cmp", "--task", "sudoku"], {},
     "Invalid value for '--task': unknown task.name 'sudoku'; valid tasks: addition, countdown"),
    ("compare-countdown-bad-size", ["compare", "--out", "cmp", "--task", "countdown", "--config", "c.yaml"],
     {"c.yaml": "task: {max_number: 0}\n"}, "task.max_number must be in 1..1000, got 0"),
    ("compare-seeds-0", ["compare", "--out", "cmp", "--seeds", "0"], {},
     "Invalid value for '--seeds': seeds must be >= 1, got 0"),
    ("compare-steps-0", ["compare", "--out", "cmp", "--steps", "0"], {},
     "Invalid value for '--steps': steps must be >= 1, got 0"),
    ("compare-out-is-a-file", ["compare", "--out", "f.txt", "--seeds", "1"], {"f.txt": "x"},
     "--out f.txt exists and is not a directory"),
    ("compare-minutes-0", ["compare", "--out", "cmp", "--minutes", "0"], {},
     "Invalid value for '--minutes': minutes must be > 0, got 0.0"),
    ("compare-minutes-inf", ["compare", "--out", "cmp", "--minutes", "inf"], {},
     "Invalid value for '--minutes': minutes must be a finite number > 0, got inf"),
    ("compare-passes-text", ["compare", "--out", "cmp", "--passes", "1,two"], {},
     "Invalid value for '--passes': passes must be comma-separated integers >= 1, got '1,two'"),
    ("compare-passes-0", ["compare", "--out", "cmp", "--passes", "0,4"], {},
     "Invalid value for '--passes': passes must be distinct integers >= 1, got 0,4"),
    ("compare-passes-repeated", ["compare", "--out", "cmp", "--passes", "4,4"], {},
     "Invalid value for '--passes': passes must be distinct integers >= 1, got 4,4"),
    ("compare-baseline-absent", ["compare", "--out", "cmp", "--objectives", "cispo,dgpo", "--baseline", "grpo"], {},
     "Invalid value for '--baseline': baseline grpo is not among the compared objectives (cispo, dgpo)"),
    ("compare-baseline-unknown", ["compare", "--out", "cmp", "--baseline", "nope"], {},
     "Invalid value for '--baseline': unknown objective 'nope'; valid objectives: pg, grpo"),
    ("compare-arm-parameter", ["compare", "--out", "cmp", "--objectives", "grpo,dgpo(k=2)"], {},
     "Invalid value for '--objectives': unknown parameter(s) k for objective 'dgpo'"),
    ("compare-arm-range", ["compare", "--out", "cmp", "--objectives", "grpo,dgpo(n=0)"], {},
     "Invalid value for '--objectives': DGPOLossConfig.n must be > 0, got 0.0"),
    ("compare-arm-unclosed", ["compare", "--out", "cmp", "--objectives", "grpo,dgpo(n=2"], {},
     "Invalid value for '--objectives': cannot read objective 'dgpo(n=2'"),
    ("compare-arm-twice", ["compare", "--out", "cmp", "--objectives", "grpo,dgpo,dgpo(n=1)"], {},
     "Invalid value for '--objectives': objective(s) listed twice: dgpo"),
    ("compare-model-missing", ["compare", "--out", "cmp", "--model", "no/such-model-dir", "--dataset", "d.jsonl"],
     {"d.jsonl": ROW + "\n"}, "no/such-model-dir"),
    ("eval-k-0", ["eval", "--model", "m", "--out", "ev", "--k", "0"], {},
     "Invalid value for '--k': k must be >= 1, got 0"),
    ("eval-limit-0", ["eval", "--model", "m", "--out", "ev", "--limit", "0"], {},
     "Invalid value for '--limit': limit must be >= 1, got 0"),
    ("eval-batch-size-0", ["eval", "--model", "m", "--out", "ev", "--batch-size", "0"], {},
     "Invalid value for '--batch-size': batch_size must be >= 1, got 0"),
    ("eval-temperature-neg", ["eval", "--model", "m", "--out", "ev", "--temperature", "-1"], {},
     "Invalid value for '--temperature': temperature must be >= 0, got -1.0"),
    ("eval-top-p-1.5", ["eval", "--model", "m", "--out", "ev", "--top-p", "1.5"], {},
     "Invalid value for '--top-p': top_p must be in (0, 1], got 1.5"),
    ("eval-temperature-inf", ["eval", "--model", "m", "--out", "ev", "--temperature", "inf"], {},
     "Invalid value for '--temperature': temperature must be a finite number >= 0, got inf"),
    ("eval-max-new-tokens-0", ["eval", "--model", "m", "--out", "ev", "--max-new-tokens", "0"], {},
     "Invalid value for '--max-new-tokens': max_new_tokens must be >= 1, got 0"),
    ("eval-k-not-a-number", ["eval", "--model", "m", "--out", "ev", "--k", "abc"], {}, "Invalid value for '--k'"),
    ("eval-missing-option", ["eval", "--out", "ev"], {}, "Missing option '--model'"),
    ("no-such-command", ["trian"], {}, "No such command 'trian'"),
    ("eval-boxed-in-template", ["eval", "--model", "m", "--out", "ev", "--prompt-template", "{problem} \\boxed{}"],
     {}, "Invalid value for '--prompt-template': template '{problem} \\\\boxed{}' has braces other than {problem}"),
    ("eval-out-is-a-file", ["eval", "--model", "nobody/nothing", "--out", "f.txt"], {"f.txt": "x"},
     "--out f.txt exists and is not a directory"),
    ("eval-summary-without-samples", ["eval", "--model", "m", "--out", "ev", "--summary-only"], {},
     "--summary-only: ev holds no samples.jsonl"),
    ("eval-unknown-backend", ["eval", "--model", "m", "--out", "ev", "--backend", "tgi"], {},
     "Invalid value for '--backend': unknown backend 'tgi'"),
    # plots
    ("plot-no-valid-metrics-line", ["plot", "r", "--out", "c.png"], {"r/metrics.jsonl": '{"step": 1, "rew'},
     "r/metrics.jsonl holds no valid metrics line"),
    ("plot-empty-metrics", ["plot", "r", "--out", "c.png"], {"r/metrics.jsonl": ""}, "holds no valid metrics line"),
    ("plot-missing-run", ["plot", "nowhere", "--out", "c.png"], {}, "run directory not found: nowhere"),
]  # fmt: skip
if importlib.util.find_spec("wandb") is None:
    CASES.append(
        ("report-to-not-installed", ["train", "--config", "c.yaml"], {"c.yaml": "rl: {report_to: [wandb]}\n"},
         "rl.report_to: wandb not installed")
    )  # fmt: skip
if importlib.util.find_spec("vllm") is None:
    CASES.append(
        ("eval-vllm-not-installed", ["eval", "--model", "m", "--out", "ev", "--backend", "vllm"], {},
         "Invalid value for '--backend': backend vllm needs vLLM")
    )  # fmt: skip


def make_files(root: Path, files: dict[str, str | None]) -> None:
    for name, text in files.items():
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root``: directories by name, files with their bytes and mtime."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            found[os.path.relpath(os.path.join(folder, name), root) + "/"] = ()
        for name in files:
            path = Path(folder, name)
            found[str(path.relative_to(root))] = (path.read_bytes(), path.stat().st_mtime_ns)
    return found


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working directory with the hub offline and no colours or debug switched on from outside."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("DGPO_DEBUG", raising=False)
    monkeypatch.delenv("DGPO_DATA_DIR", raising=False)
    return work


def error_line(output: str) -> str:
    """The one ``error:`` line, which must also be the last line; no traceback anywhere."""
    lines = [line for line in ANSI.sub("", output).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], output
    assert "Traceback" not in output, output
    return errors[0]


@pytest.mark.parametrize(("args", "files", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_a_bad_input_is_one_error_line_and_changes_nothing(workdir, args, files, expected):
    make_files(workdir, files)
    before = snapshot(workdir)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.output, result.exception)
    assert expected in error_line(result.output)
    assert snapshot(workdir) == before  # nothing changed, nothing left behind


def test_debug_shows_the_traceback_above_the_error_line(workdir, monkeypatch):
    (workdir / "bad.yaml").write_text("seed: 1: 2\n")
    for args in (["--debug", "train", "--config", "bad.yaml"], ["train", "--config", "bad.yaml"]):
        if args[0] != "--debug":
            monkeypatch.setenv("DGPO_DEBUG", "1")
        result = runner.invoke(app, args)
        assert result.exit_code == 2
        assert "Traceback (most recent call last)" in result.output and "yaml.scanner.ScannerError" in result.output
        assert result.output.strip().splitlines()[-1].startswith("error: config file bad.yaml is not valid YAML")


def test_debug_shows_the_config_traceback_of_a_refused_option_value(workdir):
    result = runner.invoke(app, ["--debug", "eval", "--model", "nowhere", "--out", "o", "--k", "0"])
    assert result.exit_code == 2
    assert (
        "Traceback (most recent call last)" in result.output and "SettingError: k must be >= 1, got 0" in result.output
    )
    assert result.output.strip().splitlines()[-1].startswith("error: Invalid value for '--k': k must be >= 1, got 0")
    missing = runner.invoke(app, ["--debug", "eval", "--out", "o"])  # click's own usage error has no traceback
    assert missing.exit_code == 2 and "Traceback" not in missing.output


def test_a_torn_last_metrics_line_is_skipped_with_a_warning(workdir):
    lines = [json.dumps({"step": step, "reward": 0.1 * step}) for step in (1, 2, 3)]
    make_files(workdir, {"r/metrics.jsonl": "\n".join(lines) + '\n{"step": 4, "rew'})
    result = runner.invoke(app, ["plot", "r", "--out", "c.png"])
    assert result.exit_code == 0, result.output
    assert "skipped the torn last line 4 (the run may still be writing it)" in " ".join(result.output.split())
    assert (workdir / "c.png").stat().st_size > 0


def old_run(run: Path) -> None:
    """A run directory as earlier versions left it: no marker of any kind, relative paths in config.yaml."""
    run.mkdir(parents=True)
    save_config(load_config(None, {"output_dir": "runs/old"}), run / "config.yaml")
    (run / "metrics.jsonl").write_text(json.dumps({"step": 1}) + "\n")
    (run / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    (run / "eval").mkdir()  # `dgpo eval --out RUN_DIR/eval`, as the examples suggest
    (run / "eval" / "eval_config.json").write_text("{}")
    (run / "eval" / "samples.jsonl").write_text("")


def test_failed_starts_leave_no_trace_and_overwrite_deletes_only_a_run(workdir, monkeypatch):
    import dgpo.train.run

    def broken_warm_start(*args, **kwargs):
        raise ValueError("the warm start broke")

    monkeypatch.setattr(dgpo.train.run, "warm_start", broken_warm_start)
    (workdir / "empty").mkdir()
    before = snapshot(workdir)
    for out in ("new/deeper/run", "empty"):  # a new directory is removed again, an empty one stays empty
        result = runner.invoke(app, ["train", "--output-dir", out])
        assert result.exit_code == 2 and "the warm start broke" in error_line(result.output)
        assert snapshot(workdir) == before

    old_run(workdir / "old")
    (workdir / "old" / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["train", "--output-dir", "old", "--overwrite"])
    assert "old holds files dgpo did not write (notes.txt); refusing to delete it" in error_line(result.output)
    (workdir / "old" / "notes.txt").unlink()
    result = runner.invoke(app, ["train", "--output-dir", "old"])
    assert "old already holds a run; use --resume old, --overwrite" in error_line(result.output)
    result = runner.invoke(app, ["train", "--output-dir", "old", "--overwrite"])
    assert "--overwrite: deleted the run in old (checkpoints/, config.yaml, eval/, metrics.jsonl)" in result.output
    assert "the warm start broke" in error_line(result.output)
    assert list((workdir / "old").iterdir()) == []  # deleted as asked; the failed start itself left nothing


def test_a_failed_eval_start_leaves_out_as_found_and_paths_compare_resolved(workdir, monkeypatch, tiny_model_dir):
    import dgpo.eval.runner

    shutil.copytree(tiny_model_dir, workdir / "model")
    args = ["eval", "--benchmarks", "amc23", "--limit", "1", "--k", "1", "--max-new-tokens", "2", "--out", "ev"]
    stale = {"model": "elsewhere", "temperature": 0.1, "top_p": 0.5, "max_new_tokens": 9, "template": "", "seed": 7}
    (workdir / "ev").mkdir()
    (workdir / "ev" / "eval_config.json").write_text(json.dumps(stale))  # an earlier version's failed start

    def no_backend(*args, **kwargs):
        raise OSError("no memory for the model")

    with monkeypatch.context() as patch:
        patch.setattr(dgpo.eval.runner, "make_backend", no_backend)
        before = snapshot(workdir)
        for out in ("ev", "new/ev"):
            result = runner.invoke(app, [*args[:-1], out, "--model", "model"])
            assert result.exit_code == 2 and "no memory for the model" in error_line(result.output)
            assert snapshot(workdir) == before

    result = runner.invoke(app, [*args, "--model", "model"])  # the stale settings bound nothing: no sample
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, [*args, "--model", str(workdir / "model"), "--k", "2"])  # same model, absolute
    assert result.exit_code == 0, result.output
    assert json.loads((workdir / "ev" / "eval_config.json").read_text())["model"] == str(workdir / "model")
    assert len((workdir / "ev" / "samples.jsonl").read_text().splitlines()) == 2


#: 10 warm-start steps, 2 RL steps, 5 held-out items: about 6 s in-process on 2 cores once the libraries are loaded.
TINY = {
    "task": {"digits": 1, "train_size": 40, "test_size": 5},
    "warm_start": {"steps": 10, "batch_size": 16},
    "rl": {"max_steps": 2, "save_steps": 2, "per_device_train_batch_size": 8, "num_generations": 4,
           "max_completion_length": 16, "reward_workers": 1},
    "held_out": {"k": 1, "max_new_tokens": 16},
}  # fmt: skip


@pytest.mark.slow
def test_resume_from_another_directory_after_a_move(workdir, monkeypatch):
    from dgpo.train.task import TaskConfig, make_splits

    start, elsewhere = workdir / "start", workdir / "elsewhere"
    start.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(start)
    train, _ = make_splits(TaskConfig(**TINY["task"]))
    Path("train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in train))
    Path("tiny.yaml").write_text(yaml.safe_dump(TINY))
    result = runner.invoke(app, ["train", "--config", "tiny.yaml", "--dataset", "train.jsonl", "--output-dir", "r"])
    assert result.exit_code == 0, result.output
    used = yaml.safe_load(Path("r/config.yaml").read_text())
    assert used["dataset"] == str(start / "train.jsonl") and used["output_dir"] == str(start / "r")

    run = workdir / "moved"
    shutil.move(start / "r", run)  # the run moves; the dataset stays where it was
    monkeypatch.chdir(elsewhere)
    finished = snapshot(run)
    result = runner.invoke(app, ["train", "--resume", "../moved"])
    assert result.exit_code == 0 and "is finished (results.json): nothing to resume" in result.output
    assert snapshot(run) == finished

    # Killed after its last checkpoint, before final/ and results.json: resuming trains no extra step.
    shutil.rmtree(run / "final")
    (run / "results.json").unlink()
    result = runner.invoke(app, ["train", "--resume", "../moved"])
    assert result.exit_code == 0 and "is step 2 of 2: nothing left to train" in result.output, result.output
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2] and (run / "final" / "model.safetensors").is_file() and (run / "results.json").is_file()
    assert not (run / "checkpoints" / "checkpoint-3").exists()
    from safetensors.torch import load_file

    final = load_file(run / "final" / "model.safetensors")
    last = load_file(run / "checkpoints" / "checkpoint-2" / "model.safetensors")
    assert final.keys() == last.keys() and all(torch.equal(final[k], last[k]) for k in final)

    # Make it a 4-step run killed after its step-2 checkpoint: config.yaml says 4 steps, no results yet.
    used["rl"]["max_steps"] = 4
    (run / "config.yaml").write_text(yaml.safe_dump(used, sort_keys=False))
    (run / "results.json").unlink()
    result = runner.invoke(app, ["train", "--resume", "../moved"])
    assert result.exit_code == 0, result.output
    assert "warm start: reusing" in result.output and "resuming from" in result.output
    assert "checkpoint-2" in result.output and "warm start: 10 steps" not in result.output  # no second warm start
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    assert list(elsewhere.iterdir()) == []  # nothing started in the working directory
    assert yaml.safe_load((run / "config.yaml").read_text())["output_dir"] == str(run)  # now names where it is


def test_plot_leaves_out_a_curve_without_finite_values_and_says_so(workdir):
    lines = [{"step": s, "loss": 0.1 * s, "reward": 0.5, "grad_norm": float("nan")} for s in (1, 2, 3)]
    make_files(workdir, {"r/metrics.jsonl": "".join(json.dumps(line) + "\n" for line in lines)})
    result = runner.invoke(app, ["plot", "r", "--out", "c.png"])
    assert result.exit_code == 0, result.output
    assert "grad_norm is NaN or Inf on all 3 lines; its curve is left out" in result.output
    assert "Traceback" not in result.output and (workdir / "c.png").stat().st_size > 0


@pytest.mark.slow
def test_a_run_that_diverges_names_the_settings_to_look_at(workdir):
    # lr 1e30 is finite and > 0, so it passes the range check; Adam's first step then sends the weights to inf.
    # Some right answers (15% greedy after 60 warm-start steps on the development machine) and 4 generation
    # batches, so some step has a gradient on any machine; the run stops at the first one.
    config = {**TINY, "task": {**TINY["task"], "train_size": 70, "test_size": 20},
              "warm_start": {"steps": 100, "batch_size": 16},
              "rl": {**TINY["rl"], "max_steps": 8, "learning_rate": 1e30}}  # fmt: skip
    (workdir / "c.yaml").write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["train", "--config", "c.yaml", "--output-dir", "run"])
    assert result.exit_code == 2, (result.output, result.exception)
    line = error_line(result.output)
    assert "training diverged after step" in line and "holds NaN or Inf" in line, line
    assert "lower rl.learning_rate (now 1e+30) or rl.num_iterations (now 2)" in line, line
