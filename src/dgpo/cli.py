"""The ``dgpo`` command line (typer + rich): the commands.

Every user mistake ends with exit code 2 and exactly one ``error:`` line naming the option, key or file
(:mod:`dgpo.cli_errors`). The commands check no value themselves: the config dataclasses (``EvalConfig``,
``RunConfig``'s sections, ``TaskConfig``, ``CompareSpec``) check their own, and :func:`~dgpo.cli_errors.build`
only adds the option's name to their message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from dgpo.advantages import ADVANTAGES
from dgpo.aggregation import AGGREGATIONS
from dgpo.cli_errors import USER_ERRORS, OneLineErrors, build, fail, name_the_option, refuse_launcher, set_debug
from dgpo.compare_spec import (
    DEFAULT_BASELINE,
    DEFAULT_OBJECTIVES,
    FRONTIER_PRESETS,
    MODEL_HELD_OUT_ROWS,
    QUICK_OBJECTIVES,
    QUICK_PASSES,
    QUICK_SEEDS,
    QUICK_STUDY_STEPS,
    STUDY_OBJECTIVES,
    STUDY_PASSES,
    STUDY_SEEDS,
    STUDY_STEPS,
    CompareSpec,
)
from dgpo.data.benchmarks import BENCHMARKS
from dgpo.data.train_sets import NAMED_DATASETS
from dgpo.diagnostics import DEFAULT_HP_RATIOS, DEFAULT_LN_RATIOS, weight_vs_pg
from dgpo.eval.backends import BACKENDS, HFBackend, VLLMBackend
from dgpo.eval.runner import EvalConfig
from dgpo.losses import LOSSES, config_class
from dgpo.train.run_config import RLConfig, RunConfig, WarmStartConfig, default_of
from dgpo.train.task import TASKS, TaskConfig

#: Defaults live in the dataclasses (EvalConfig, CompareSpec, RunConfig); options that have one default to None,
#: so that the dataclass fills it in, and their help texts read it from there.
_EVAL = {name: default_of(EvalConfig, name) for name in ("k", "temperature", "top_p", "max_new_tokens", "seed")}
_COMPARE = {name: default_of(CompareSpec, name) for name in ("seeds", "steps", "minutes")}

_ITERATIONS = default_of(RLConfig, "num_iterations")
_COUNTDOWN, _COUNTDOWN_QUICK = FRONTIER_PRESETS[("countdown", False)], FRONTIER_PRESETS[("countdown", True)]
_RL = {name: default_of(RLConfig, name) for name in ("objective", "advantage", "aggregation", "max_steps")}

app = typer.Typer(
    cls=OneLineErrors,
    help="dgpo: exact clipping objectives for RLVR (GRPO, DAPO, CISPO, GPPO, CE-GPPO, ASPO, GSPO, SAPO, DGPO).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # a bug's traceback, not pages of local variables
)


@app.callback()
def main(
    debug: bool = typer.Option(False, "--debug", help="On an error, print its traceback too (or set DGPO_DEBUG=1)."),
) -> None:
    """dgpo: exact clipping objectives for RL with verifiable rewards, built around DGPO (arXiv 2603.14389)."""
    set_debug(debug)


def _floats(text: str, option: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise typer.BadParameter(f"{option} must be comma-separated numbers, got {text!r}") from err
    if not values or any(not v > 0 for v in values):
        raise typer.BadParameter(f"{option} must be positive ratios, got {text!r}")
    return values


def _names(text: str) -> list[str]:
    """Objective names, each checked by the registry (its one "unknown objective" message)."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    for name in names:
        try:
            config_class(name)
        except ValueError as err:
            raise typer.BadParameter(str(err)) from err
    return names


def _cell(value: float) -> str:
    text = f"{value:.3g}"
    if value == 0:
        return f"[dim]{text}[/dim]"
    if value > 1.0 + 1e-9:
        return f"[bold red]{text}[/bold red]"
    return text


@app.command()
def weights(
    objectives: str = typer.Option(",".join(LOSSES), help="Comma-separated objectives, default parameters."),
    ln_ratios: str = typer.Option(
        ",".join(map(str, DEFAULT_LN_RATIOS)), help="Ratios r = π/π_old for LN tokens (Â < 0, r < 1−ε_low)."
    ),
    hp_ratios: str = typer.Option(
        ",".join(map(str, DEFAULT_HP_RATIOS)), help="Ratios for HP tokens (Â > 0, r > 1+ε_high)."
    ),
) -> None:
    """Print each objective's ratio-to-PG weight w/r on LN and HP tokens.

    w/r = 1 is plain policy gradient, 0 drops the token's gradient. Soft clipping (CISPO, GPPO, CE-GPPO) grows
    without bound on LN as r → 0; DGPO decays to 0 on both sides.
    """
    names = _names(objectives)
    console = Console()
    for title, ratios, advantage in (
        ("LN tokens (Â < 0, r < 1−ε_low): w/r", _floats(ln_ratios, "--ln-ratios"), -1.0),
        ("HP tokens (Â > 0, r > 1+ε_high): w/r", _floats(hp_ratios, "--hp-ratios"), 1.0),
    ):
        table = Table(title=title)
        table.add_column("objective", style="bold", no_wrap=True)
        for r in ratios:
            table.add_column(f"r={r:g}", justify="right", no_wrap=True)
        for name in names:
            table.add_row(name, *(_cell(v) for v in weight_vs_pg(name, ratios, advantage=advantage)))
        console.print(table)
    console.print(
        "w/r = 1 is plain PG, 0 drops the token's gradient, red is amplified beyond PG.\n"
        "LN: Â < 0 and r < 1−ε_low; HP: Â > 0 and r > 1+ε_high (defaults of each objective; pg/sapo use ε = 0.2).\n"
        "Soft clipping keeps w constant, so w/r = (1−ε)/r diverges as r → 0; DGPO's w/r = (r/(1−ε))^n → 0."
    )


@app.command("eval")
def eval_command(
    model: str = typer.Option(..., help="Model directory or Hugging Face id."),
    out: str = typer.Option(..., help="Run directory: samples.jsonl, results.json, results.md (resumable)."),
    benchmarks: str | None = typer.Option(None, help=f"Comma-separated, or all (default): {','.join(BENCHMARKS)}."),
    k: int | None = typer.Option(None, help=f"Samples per problem (default {_EVAL['k']}; the paper: 32)."),
    temperature: float | None = typer.Option(
        None, help=f"Sampling temperature (default {_EVAL['temperature']}; 0 = greedy)."
    ),
    top_p: float | None = typer.Option(None, help=f"Nucleus sampling top-p (default {_EVAL['top_p']})."),
    max_new_tokens: int | None = typer.Option(
        None, help=f"Generation budget per sample (default {_EVAL['max_new_tokens']})."
    ),
    limit: int | None = typer.Option(None, help="Only the first N problems of each benchmark."),
    batch_size: int | None = typer.Option(
        None,
        help=f"Prompts per generate call (default: {HFBackend.DEFAULT_BATCH_SIZE} transformers, "
        f"{VLLMBackend.DEFAULT_BATCH_SIZE} vLLM).",
    ),
    backend: str | None = typer.Option(
        None,
        help=f"One of {', '.join(BACKENDS)} (default {default_of(EvalConfig, 'backend')}; "
        "auto: vLLM if installed and a GPU is present).",
    ),
    seed: int | None = typer.Option(None, help=f"Sampling seed (default {_EVAL['seed']})."),
    prompt_template: str | None = typer.Option(
        None, help="User message; {problem} is replaced by the problem (default: the R1-distill instruction)."
    ),
    summary_only: bool = typer.Option(False, help="Only summarise the samples already in --out."),
) -> None:
    """Evaluate a model on the paper's benchmarks: Avg@k and unbiased Pass@k per benchmark and their mean.

    Samples are appended to OUT/samples.jsonl as they are produced; re-running with the same --out generates
    only what is missing.
    """
    from dgpo.eval import run_eval

    refuse_launcher("eval")
    try:
        options = {
            "--benchmarks": ("benchmarks", benchmarks), "--k": ("k", k), "--temperature": ("temperature", temperature),
            "--top-p": ("top_p", top_p), "--max-new-tokens": ("max_new_tokens", max_new_tokens),
            "--limit": ("limit", limit), "--batch-size": ("batch_size", batch_size), "--backend": ("backend", backend),
            "--seed": ("seed", seed), "--prompt-template": ("template", prompt_template),
        }  # fmt: skip
        cfg = build(EvalConfig, options, model=model, out=out)
        run_eval(cfg, generate=not summary_only)
    except USER_ERRORS as err:
        fail(err)


@app.command()
def train(
    config: str | None = typer.Option(
        None, help="YAML of the run config (see `dgpo.train.run_config`); flags override it."
    ),
    resume: str | None = typer.Option(
        None, help="Continue RUN_DIR (from any directory) from its last checkpoint, with its config.yaml."
    ),
    output_dir: str | None = typer.Option(None, help=f"Run directory (default {default_of(RunConfig, 'output_dir')})."),
    overwrite: bool = typer.Option(
        False, help="Delete the dgpo run in --output-dir and start afresh (refused for any other directory)."
    ),
    model: str | None = typer.Option(None, help="Model path or hub id; default: the embedded tiny model."),
    dataset: str | None = typer.Option(
        None, help=f"{' | '.join(NAMED_DATASETS)} (in $DGPO_DATA_DIR) | JSONL/parquet path."
    ),
    objective: str | None = typer.Option(None, help=f"Objective: {', '.join(LOSSES)} (default {_RL['objective']})."),
    n: float | None = typer.Option(None, help="DGPO left-boundary exponent n."),
    m: float | None = typer.Option(None, help="DGPO right-boundary exponent m."),
    eps_low: float | None = typer.Option(None, help="Objective eps_low (r < 1 − eps_low is the left boundary)."),
    eps_high: float | None = typer.Option(None, help="Objective eps_high (r > 1 + eps_high is the right boundary)."),
    advantage: str | None = typer.Option(
        None, help=f"Advantage: {', '.join(ADVANTAGES)} (default {_RL['advantage']})."
    ),
    aggregation: str | None = typer.Option(
        None, help=f"Aggregation: {', '.join(AGGREGATIONS)} (default {_RL['aggregation']})."
    ),
    steps: int | None = typer.Option(None, help=f"RL optimiser steps (default {_RL['max_steps']})."),
    lr: float | None = typer.Option(None, help=f"RL learning rate (default {default_of(RLConfig, 'learning_rate')})."),
    seed: int | None = typer.Option(
        None, help=f"Seed of the task, model, warm start and RL (default {default_of(RunConfig, 'seed')})."
    ),
    warm_start_steps: int | None = typer.Option(
        None, help=f"Supervised warm-start steps (embedded model; default {default_of(WarmStartConfig, 'steps')})."
    ),
    task: str | None = typer.Option(
        None,
        help=f"Embedded task: {' | '.join(TASKS)} (default {default_of(TaskConfig, 'name')}); countdown brings its "
        "own model size, warm start and completion budget (TASK_PRESETS in dgpo.train.run_config).",
    ),
) -> None:
    """Train with RL (TRL + the dgpo objective). With no options: the embedded default on the CPU in minutes —
    a tiny model, a supervised warm start on arithmetic, RL, and held-out accuracy before and after."""
    import dataclasses

    from dgpo import distributed
    from dgpo.train.run import run_training
    from dgpo.train.run_config import load_config

    options = {
        "--output-dir": ("output_dir", output_dir), "--model": ("model", model), "--dataset": ("dataset", dataset),
        "--seed": ("seed", seed), "--objective": ("rl.objective", objective), "--n": ("rl.objective_kwargs.n", n),
        "--m": ("rl.objective_kwargs.m", m), "--eps-low": ("rl.objective_kwargs.eps_low", eps_low),
        "--eps-high": ("rl.objective_kwargs.eps_high", eps_high), "--advantage": ("rl.advantage", advantage),
        "--aggregation": ("rl.aggregation", aggregation), "--steps": ("rl.max_steps", steps),
        "--lr": ("rl.learning_rate", lr), "--warm-start-steps": ("warm_start.steps", warm_start_steps),
        "--task": ("task.name", task),
    }  # fmt: skip
    overrides: dict = {}
    for key, value in options.values():
        if value is not None:
            *sections, name = key.split(".")
            node = overrides
            for section in sections:
                node = node.setdefault(section, {})
            node[name] = value
    try:
        if resume is not None:
            if overrides or config or overwrite:
                raise ValueError("--resume continues a run with its own config.yaml; drop the other options")
            # The run directory is RUN_DIR itself, wherever it is now: output_dir in its config.yaml only records
            # where it was started (relative to a working directory that may not be this one).
            run_dir = Path(resume).expanduser().resolve()
            if not (run_dir / "config.yaml").is_file():
                what = "no config.yaml" if run_dir.is_dir() else "no such directory"
                raise FileNotFoundError(f"--resume {resume}: no dgpo run to resume there ({what})")
            cfg = dataclasses.replace(load_config(run_dir / "config.yaml"), output_dir=str(run_dir))
        else:
            _check_sections(options)
            cfg = _load_naming_flags(config, overrides, options)
        run_training(cfg, resume=resume is not None, overwrite=overwrite)
    except USER_ERRORS as err:
        # Every rank fails a start-up check the same way (dgpo.distributed.on_main), so all of them get here and
        # leave the process group together before exiting; left to interpreter exit, gloo's teardown could abort
        # one rank (SIGABRT) and torchrun would report that instead of the CLI's exit code.
        distributed.close()
        fail(err)
    distributed.close()


def _load_naming_flags(config: Path | None, overrides: dict, options: dict[str, tuple[str, Any]]) -> RunConfig:
    """``load_config``; a value it refuses that an option set (an objective parameter, ``rl.objective_kwargs.n``,
    which only the whole config can check) is named by that option."""
    from dgpo.ranges import SettingError
    from dgpo.train.run_config import load_config

    try:
        return load_config(config, overrides)
    except SettingError as err:
        name_the_option(err, options)
        raise


def _check_sections(options: dict[str, tuple[str, Any]]) -> None:
    """Check each option that sets one field of a config section (``rl.max_steps``) by that section alone, so that a
    refusal names the option. The objective's parameters (``rl.objective_kwargs.n``) depend on the objective, which
    may come from the config file: the whole config checks them, by the parameter's name."""
    for flag, (key, value) in options.items():
        if value is not None and key.count(".") == 1:
            section, name = key.split(".")
            build(type(default_of(RunConfig, section)), {flag: (name, value)})


@app.command()
def plot(
    targets: list[str] = typer.Argument(..., help="`weights`, or one or more run directories."),
    out: Path = typer.Option(..., help="Output image (PNG)."),
) -> None:
    """Plot the weight functions of every objective (`dgpo plot weights`) or training curves of runs overlaid."""
    from dgpo.plot import plot_runs, plot_weights

    try:
        if targets == ["weights"]:
            plot_weights(out)
        else:
            missing = [t for t in targets if not Path(t).is_dir()]
            if missing:
                raise FileNotFoundError(f"run directory not found: {', '.join(missing)}")
            plot_runs(targets, out)
    except USER_ERRORS as err:
        fail(err)
    Console().print(f"wrote {out}")


@app.command()
def compare(
    out: Path = typer.Option(..., help="Output directory (resumable): runs/, table.md, summary.json, plots."),
    objectives: str | None = typer.Option(
        None,
        help=f"Comma-separated objectives, each a name of {', '.join(LOSSES)} or name(key=value,...), e.g. "
        f"'dgpo(n=2,m=2)' (default {','.join(DEFAULT_OBJECTIVES)}; {','.join(QUICK_OBJECTIVES)} with --quick; "
        f"{','.join(STUDY_OBJECTIVES)} with --frontier).",
    ),
    baseline: str | None = typer.Option(
        None,
        help=f"Objective every other is paired against; one of those compared (default {DEFAULT_BASELINE} when "
        "compared, else the first objective).",
    ),
    seeds: int | None = typer.Option(
        None,
        help=f"Seeds per objective, >= 1 (default {_COMPARE['seeds']}; {QUICK_SEEDS} with --quick; "
        f"{STUDY_SEEDS} with --frontier).",
    ),
    steps: int | None = typer.Option(
        None,
        help=f"RL steps per run (default {_COMPARE['steps']}; {STUDY_STEPS} with --frontier, {QUICK_STUDY_STEPS} with "
        "--frontier --quick); with --passes, steps / num_iterations generation batches per run at every level.",
    ),
    minutes: float | None = typer.Option(
        None,
        help=f"Wall-clock budget of each run's RL stage, in minutes (default {_COMPARE['minutes']:g}; scaled with "
        "the passes).",
    ),
    passes: str | None = typer.Option(
        None,
        help="Off-policy levels: comma-separated optimiser passes per generation batch, e.g. 1,2,4,8,16; each "
        "objective runs at each level with the same learning rate and generation batches, and frontier.png plots "
        "accuracy against them.",
    ),
    frontier: bool = typer.Option(
        False,
        help=f"The off-policy study: passes {','.join(map(str, STUDY_PASSES))} × {','.join(STUDY_OBJECTIVES)} × "
        f"{STUDY_SEEDS} seeds, {STUDY_STEPS // _ITERATIONS} generation batches per run (about 1.4 h on 2 cores); "
        f"with --quick {','.join(map(str, QUICK_PASSES))} × {','.join(QUICK_OBJECTIVES)} × {QUICK_SEEDS} seeds, "
        f"{QUICK_STUDY_STEPS // _ITERATIONS} batches (under 20 min). Held-out Avg@1 unless the config sets held_out.k.",
    ),
    quick: bool = typer.Option(
        False, help=f"{', '.join(QUICK_OBJECTIVES)} × {QUICK_SEEDS} seeds (a few minutes on 2 cores)."
    ),
    stress: bool = typer.Option(False, help="Stress preset: 4 passes per batch and lr 2e-4, to provoke divergence."),
    model: str | None = typer.Option(
        None, help="Compare on this model (hub id or path) instead of the embedded one; needs --dataset."
    ),
    dataset: str | None = typer.Option(
        None,
        help="Training set for --model: dapo_math_17k, math, gsm8k or a JSONL/parquet path; held_out.rows of it "
        f"(default {MODEL_HELD_OUT_ROWS} here) are held out for the before/after accuracy.",
    ),
    config: str | None = typer.Option(None, help="YAML overriding the run config of every run (e.g. task sizes)."),
    task: str | None = typer.Option(
        None,
        help=f"Embedded task: {' | '.join(TASKS)} (default {default_of(TaskConfig, 'name')}, 3-digit here); "
        f"--frontier on countdown: passes {','.join(map(str, _COUNTDOWN.passes))} × "
        f"{','.join(_COUNTDOWN.objectives)} × {_COUNTDOWN.seeds} seeds, with --quick "
        f"{','.join(map(str, _COUNTDOWN_QUICK.passes))} × {','.join(_COUNTDOWN_QUICK.objectives)} × "
        f"{_COUNTDOWN_QUICK.seeds} seeds.",
    ),
) -> None:
    """Run every objective × seed (× off-policy level) on one warm start per seed; write paired tables and plots."""
    from dgpo.compare import run_compare
    from dgpo.train.run_config import merge, read_overrides

    refuse_launcher("compare")
    try:
        base = read_overrides(config) if config is not None else {}
        base = merge(base, {key: value for key, value in (("model", model), ("dataset", dataset)) if value})
        options = {
            "--objectives": ("objectives", objectives or None), "--baseline": ("baseline", baseline),
            "--seeds": ("seeds", seeds), "--steps": ("steps", steps), "--minutes": ("minutes", minutes),
            "--passes": ("passes", _passes(passes) if passes else None), "--task": ("task", task),
        }  # fmt: skip
        spec = build(CompareSpec.preset, options, out=out, quick=quick, frontier=frontier, stress=stress, base=base)
        run_compare(spec)
    except USER_ERRORS as err:
        fail(err)


def _passes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        message = f"passes must be comma-separated integers >= 1, got {text!r}"
        raise typer.BadParameter(message, param_hint="'--passes'") from None


if __name__ == "__main__":
    app()
