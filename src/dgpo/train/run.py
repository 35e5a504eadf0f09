"""``dgpo train``: warm-start (embedded default), held-out evaluation, RL with DGPOTrainer, evaluation again.

Run directory: ``config.yaml`` (the config used), ``warm_start/`` (embedded model after SFT), ``checkpoints/``
(at generation-cycle boundaries), ``metrics.jsonl`` (one line per step), ``final/`` (the trained model),
``results.json`` (held-out accuracy before and after). ``--resume RUN_DIR`` continues from the last checkpoint.
Under torchrun / accelerate launch, rank 0 writes all of it and the other ranks wait for it (:mod:`dgpo.distributed`).

Every check that can fail on a user mistake runs before the run directory is touched, and a fresh start that fails
anyway before RL begins removes what it wrote (:class:`dgpo.claim.DirClaim`); which directories count as runs,
and what ``--overwrite`` may delete, is :mod:`dgpo.train.run_dir`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from dgpo import distributed
from dgpo.data.prompts import R1_TEMPLATE
from dgpo.data.train_sets import NAMED_DATASETS, load_train_set
from dgpo.eval.backends import SamplingSettings, check_model_available, check_model_path
from dgpo.eval.held_out import evaluate_rows
from dgpo.fileio import write_atomically
from dgpo.train.rl import dgpo_config, task_reward, train_rl
from dgpo.train.run_config import RunConfig
from dgpo.train.run_dir import prepare_run_dir
from dgpo.train.task import make_splits

TINY_TEMPLATE = "{problem}"


def template_for(cfg: RunConfig) -> str:
    return cfg.template or (TINY_TEMPLATE if cfg.embedded else R1_TEMPLATE)


def named_dataset_path(name: str) -> Path:
    return Path(os.environ.get("DGPO_DATA_DIR", "data")) / NAMED_DATASETS[name]


def pin_paths(cfg: RunConfig) -> RunConfig:
    """``cfg`` with ``output_dir`` and every local model/dataset path absolute, and a named dataset replaced by the
    file it names in $DGPO_DATA_DIR (when it exists), so that ``config.yaml`` means the same thing from any working
    directory and after the run directory is moved. Hub ids are left as they are."""
    model, dataset = cfg.model, cfg.dataset
    if model is not None and Path(model).expanduser().exists():
        model = str(Path(model).expanduser().resolve())
    if dataset is not None:
        file = named_dataset_path(dataset) if dataset in NAMED_DATASETS else Path(dataset).expanduser()
        if file.is_file():
            dataset = str(file.resolve())
    output_dir = str(Path(cfg.output_dir).expanduser().resolve())
    return dataclasses.replace(cfg, output_dir=output_dir, model=model, dataset=dataset)


def resolve_dataset(name: str) -> list[dict]:
    if name in NAMED_DATASETS:
        path = named_dataset_path(name)
        if not path.is_file():
            raise FileNotFoundError(
                f"dataset {name!r} expects {path}; set DGPO_DATA_DIR to the folder holding {NAMED_DATASETS[name]} "
                "or pass a JSONL/parquet path"
            )
        return load_train_set(str(path))
    return load_train_set(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def load_rows(cfg: RunConfig) -> tuple[list[dict], list[dict] | None]:
    """The training rows and the held-out rows (the embedded task's test split, or ``held_out.rows`` rows of a
    --model run's dataset). Deterministic in the config, so under a launcher every rank loads its own identical copy
    instead of receiving rank 0's."""
    if not cfg.embedded:
        if cfg.dataset is None:
            raise ValueError("a --model run needs --dataset (dapo_math_17k, math, gsm8k or a JSONL/parquet path)")
        return split_held_out(resolve_dataset(cfg.dataset), cfg.held_out.rows, cfg.dataset)
    train, test = make_splits(cfg.task)
    if cfg.dataset is not None:
        train = resolve_dataset(cfg.dataset)
        without = sum("solution" not in row for row in train)
        if without:
            raise ValueError(
                f"training set {cfg.dataset} has {without} of {len(train)} rows without a `solution` field, which "
                "the embedded model's supervised warm start trains on; add solutions, or give --model"
            )
    return train, test


def split_held_out(rows: list[dict], count: int, name: str) -> tuple[list[dict], list[dict] | None]:
    """(training rows, ``count`` held-out rows or None for 0), split by a fixed shuffle: every seed and objective of
    a comparison holds out the same rows."""
    if count == 0:
        return rows, None
    if count >= len(rows):
        raise ValueError(f"held_out.rows = {count} leaves no training rows: {name} has {len(rows)} rows")
    order = list(range(len(rows)))
    random.Random(0).shuffle(order)
    held = set(order[:count])
    test = [{"id": f"held-out-{i}", **rows[i]} for i in sorted(held)]  # evaluation keys its results by id
    return [row for i, row in enumerate(rows) if i not in held], test


def prepare_model(cfg: RunConfig, out: Path, console: Console) -> tuple[str, list[dict], list[dict] | None]:
    """The model path to start RL from, the training rows, and held-out rows (embedded task only)."""
    if not cfg.embedded:
        check_model_path(cfg.model)
    train, test = load_rows(cfg)
    return (cfg.model if not cfg.embedded else warm_start(cfg, train, out, console)), train, test


def warm_start(cfg: RunConfig, train: list[dict], out: Path, console: Console) -> str:
    """Build the embedded model and train it supervised into ``out/warm_start`` (reused when already there)."""
    warm = out / "warm_start"
    if (warm / "model.safetensors").exists():
        console.print(f"warm start: reusing {warm}")
        return str(warm)
    from transformers import AutoModelForCausalLM

    from dgpo.tiny import build_tiny_model, load_tokenizer
    from dgpo.train.sft import supervised_warm_start

    # Built in a scratch folder and renamed when done: a kill mid-way never leaves a half-trained "warm start".
    scratch = out / "warm_start.partial"
    shutil.rmtree(scratch, ignore_errors=True)
    seed_everything(cfg.seed)
    corpus = [f"{r['problem']} {r['solution']}" for r in train[:2000]]
    build_tiny_model(
        scratch, corpus, cfg.seed, cfg.tiny.vocab_size, cfg.tiny.hidden_size, cfg.tiny.layers, max_positions=512
    )
    model = AutoModelForCausalLM.from_pretrained(scratch)
    tokenizer = load_tokenizer(scratch)
    ws = cfg.warm_start
    with console.status(f"warm start: {ws.steps} supervised steps") as status:

        def show(step: int, loss: float) -> None:
            status.update(f"warm start: step {step + 1}/{ws.steps}, loss {loss:.3f}")

        losses = supervised_warm_start(
            model, tokenizer, train, template_for(cfg), ws.steps, ws.learning_rate, ws.batch_size, cfg.seed, show
        )
    model.save_pretrained(scratch)
    os.replace(scratch, warm)
    console.print(f"warm start: {ws.steps} steps, loss {losses[0]:.3f} → {losses[-1]:.3f}")
    return str(warm)


def evaluate_held_out(cfg: RunConfig, model_path: str, rows: list[dict], tag: str, out: Path, console: Console) -> dict:
    """Greedy accuracy and sampled Avg@k / Pass@k on the held-out rows (cached in ``held_out_{tag}.json``)."""
    cache = out / f"held_out_{tag}.json"
    if tag == "before" and cache.exists():  # the warm-start model never changes within a run
        return json.loads(cache.read_text())
    from transformers import AutoModelForCausalLM

    from dgpo.tiny import load_tokenizer

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype="auto")
    if torch.cuda.is_available():  # a --model run on a GPU machine: generate there (the tiny model too; harmless)
        model.to("cuda")
    tokenizer = load_tokenizer(model_path)
    h = cfg.held_out
    reward = task_reward(cfg)  # the run's own reward: held-out accuracy is what RL is rewarded for
    try:
        greedy = evaluate_rows(
            model, tokenizer, rows, reward, 1, SamplingSettings(0.0, 1.0, h.max_new_tokens), template_for(cfg)
        )
        sampled = evaluate_rows(
            model, tokenizer, rows, reward, h.k, SamplingSettings(h.temperature, 1.0, h.max_new_tokens),
            template_for(cfg), seed=cfg.seed,
        )  # fmt: skip
    finally:
        reward.close()
    result = {
        "greedy": greedy["avg"],
        "avg": sampled["avg"],
        "pass": sampled["pass"][h.k],
        "items": len(rows),
        # token lengths of the sampled completions (the greedy ones repeat one path per problem)
        "length_median": sampled["length_median"],
        "length_p90": sampled["length_p90"],
    }
    write_atomically(cache, json.dumps(result, indent=2))
    console.print(f"held-out {tag} RL: greedy {100 * result['greedy']:.1f}% on {len(rows)} items")
    return result


def check_config(cfg: RunConfig) -> None:
    """Fail before any work on what the config cannot check itself: a local model path that does not exist.

    Every value was checked when the config was built (each section's ``__post_init__``,
    :mod:`dgpo.train.run_config`). Pure: no file is written and nothing is downloaded (:func:`check_model_available`
    asks the hub).
    """
    if cfg.model is not None:
        check_model_path(cfg.model)


def check_reporting(report_to: list[str]) -> None:
    """Every ``rl.report_to`` integration installed: transformers would fail only when building the trainer, with
    a traceback, after the warm start."""
    from transformers.integrations import get_available_reporting_integrations

    available = get_available_reporting_integrations()
    missing = [name for name in report_to if name not in ("all", "none") and name not in available]
    if missing:
        raise ValueError(
            f"rl.report_to: {', '.join(missing)} not installed (installed: {', '.join(available) or 'none'}); "
            "metrics.jsonl is written in any case"
        )


def quiet_libraries() -> None:
    """Our progress bars and tables are the output; transformers' own bars and deprecation notices are noise."""
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    warnings.filterwarnings("ignore", category=UserWarning, module="trl")


def run_training(cfg: RunConfig, console: Console | None = None, resume: bool = False, overwrite: bool = False) -> dict:
    """The whole run; returns held-out results (embedded), the final model path and the process count.

    ``cfg.output_dir`` is the run directory (on resume too: the CLI sets it to ``RUN_DIR``). Local paths are made
    absolute first (:func:`pin_paths`). Under torchrun / accelerate launch (N processes) every rank runs this; rank 0
    alone prepares the run directory, warm-starts, evaluates and writes files (:func:`dgpo.distributed.on_main`),
    the others wait for it and take its results; all ranks train together, and only rank 0 prints.
    """
    if resume and overwrite:
        raise ValueError("--resume continues a run and --overwrite deletes one: give only one of them")
    given, cfg = cfg, pin_paths(cfg)  # errors name paths as given; config.yaml gets them absolute
    out = Path(given.output_dir)  # the same directory as cfg.output_dir (the working directory does not change)
    console = (console or Console()) if distributed.is_main() else Console(quiet=True)
    check_config(cfg)
    if resume and (out / "results.json").is_file():
        # TRL would train one step past max_steps from the last checkpoint and rewrite final/: leave it alone.
        message = f"{out} is finished (results.json): nothing to resume; a new run needs another --output-dir"
        console.print(message, soft_wrap=True)
        return json.loads((out / "results.json").read_text(encoding="utf-8"))
    if not cfg.embedded:
        check_model_available(cfg.model)
    quiet_libraries()
    check_reporting(cfg.rl.report_to)
    distributed.init_process_group()
    train_rows, test_rows = load_rows(given)
    try:  # TRL's own checks (whole groups per generation batch, ...) before the directory is touched
        args = dgpo_config(cfg, out)
    except ValueError as err:
        raise ValueError(f"TRL rejects the rl settings: {err}") from err
    claim = distributed.on_main(prepare_run_dir, cfg, out, resume, overwrite, console)
    try:
        model_path = distributed.on_main(warm_start, cfg, train_rows, out, console) if cfg.embedded else cfg.model
        before = (
            distributed.on_main(evaluate_held_out, cfg, model_path, test_rows, "before", out, console)
            if test_rows
            else None
        )
        started = claim.commit if claim is not None else None
        final, replicas = train_rl(cfg, args, model_path, train_rows, template_for(cfg), out, console, resume, started)
    except BaseException:
        if claim is not None and distributed.is_main():
            claim.release()  # a fresh start that failed before RL began leaves no trace
        raise
    after = (
        distributed.on_main(evaluate_held_out, cfg, str(final), test_rows, "after", out, console) if test_rows else None
    )
    results = {"final_model": str(final), "before": before, "after": after, **replicas}
    distributed.on_main(write_atomically, out / "results.json", json.dumps(results, indent=2))
    if before and after:
        print_results(cfg, before, after, console)
    return results


def print_results(cfg: RunConfig, before: dict, after: dict, console: Console) -> None:
    k = cfg.held_out.k
    table = Table(title=f"Held-out accuracy ({before['items']} items), objective {cfg.rl.objective}")
    for column in ("", "greedy", f"Avg@{k} (T={cfg.held_out.temperature:g})", f"Pass@{k}"):
        table.add_column(column, justify="right")
    for name, r in (("before RL", before), ("after RL", after)):
        table.add_row(name, f"{100 * r['greedy']:.1f}%", f"{100 * r['avg']:.1f}%", f"{100 * r['pass']:.1f}%")
    delta = 100 * (after["greedy"] - before["greedy"])
    table.add_row("change", f"{delta:+.1f} pts", f"{100 * (after['avg'] - before['avg']):+.1f} pts", "")
    console.print(table)
