"""The ``dgpo`` command line (typer + rich).

Every user mistake — a bad option value, a missing or malformed file, a model that cannot be found — ends with
exit code 2 and exactly one ``error:`` line naming the option, key or file, no traceback; ``dgpo --debug ...`` or
``DGPO_DEBUG=1`` prints the traceback above that line. Click's own usage errors (a missing option, ``--k abc``)
take the same one-line form (:class:`OneLineErrors`).
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from dgpo.advantages import ADVANTAGES
from dgpo.aggregation import AGGREGATIONS
from dgpo.compare import (
    DEFAULT_BASELINE,
    DEFAULT_OBJECTIVES,
    FRONTIER_PRESETS,
    MODEL_HELD_OUT_ROWS,
    QUICK_OBJECTIVES,
    QUICK_PASSES,
    QUICK_SEEDS,
    QUICK_STUDY_STEPS,
    STUDY_OBJECTIVES,
    STUDY_OVERRIDES,
    STUDY_PASSES,
    STUDY_SEEDS,
    STUDY_STEPS,
    CompareSpec,
)
from dgpo.data.benchmarks import BENCHMARKS
from dgpo.data.train_sets import NAMED_DATASETS
from dgpo.diagnostics import DEFAULT_HP_RATIOS, DEFAULT_LN_RATIOS, weight_vs_pg
from dgpo.eval.backends import BACKENDS
from dgpo.eval.runner import EvalConfig
from dgpo.losses import LOSSES
from dgpo.ranges import check_range
from dgpo.train.run_config import RLConfig, RunConfig, WarmStartConfig, default_of
from dgpo.train.task import TASKS, TaskConfig

#: Defaults live in the dataclasses (EvalConfig, CompareSpec, RunConfig); options that have one default to None,
#: so that the dataclass fills it in, and their help texts read it from there.
_EVAL = {name: default_of(EvalConfig, name) for name in ("k", "temperature", "top_p", "max_new_tokens", "seed")}
_COMPARE = {name: default_of(CompareSpec, name) for name in ("seeds", "steps", "minutes")}

_ITERATIONS = default_of(RLConfig, "num_iterations")
_COUNTDOWN, _COUNTDOWN_QUICK = FRONTIER_PRESETS[("countdown", False)], FRONTIER_PRESETS[("countdown", True)]
_RL = {name: default_of(RLConfig, name) for name in ("objective", "advantage", "aggregation", "max_steps")}

#: Errors that are the user's to fix (bad values, missing or unreadable files): one line, exit code 2.
USER_ERRORS = (ValueError, OSError)
_debug = False
#: Click's exception classes wherever this typer keeps them (typer >= 0.26 vendors click as ``typer._click``).
_click = sys.modules[typer.BadParameter.__module__]
_NO_ARGS_IS_HELP = getattr(_click, "NoArgsIsHelpError", ())  # click >= 8.2: `dgpo` alone, answered with the help


class OneLineErrors(TyperGroup):
    """Click's usage errors as dgpo's one ``error:`` line (exit code 2) instead of click's usage box.

    Options are parsed in ``make_context`` (the group's) and in ``invoke`` (the subcommand's, and the command
    body's ``typer.BadParameter``); ``dgpo`` alone still prints the help.
    """

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except _NO_ARGS_IS_HELP:
            raise
        except _click.ClickException as err:
            _usage_error(err)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except _NO_ARGS_IS_HELP:
            raise
        except _click.ClickException as err:
            _usage_error(err)


def _usage_error(err: Exception) -> NoReturn:
    message = err.format_message()
    context = getattr(err, "ctx", None)
    if isinstance(err, _click.UsageError) and context is not None:
        message += f" (see: {context.command_path} --help)"
    fail(ValueError(message), traceback_too=False)


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
    global _debug
    _debug = debug


def debugging() -> bool:
    """``--debug`` was given or ``DGPO_DEBUG`` is set (the way under torchrun, whose ranks start their own CLI)."""
    return _debug or os.environ.get("DGPO_DEBUG", "").lower() in ("1", "true", "yes", "on")


def _floats(text: str, option: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise typer.BadParameter(f"{option} must be comma-separated numbers, got {text!r}") from err
    if not values or any(not v > 0 for v in values):
        raise typer.BadParameter(f"{option} must be positive ratios, got {text!r}")
    return values


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in LOSSES]
    if unknown:
        raise typer.BadParameter(f"unknown objective(s) {', '.join(unknown)}; valid objectives: {', '.join(LOSSES)}")
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


def fail(err: BaseException, traceback_too: bool = True) -> NoReturn:
    """A user error (bad value, missing file): one red line on stderr (the terminal wraps it, rich does not) and exit
    code 2, no traceback unless :func:`debugging` — then the traceback comes first and the line still last.

    The message is printed as plain text (not rich markup, so ``[...]`` in a path survives) with its line breaks
    folded into spaces. Under torchrun / accelerate launch every rank fails the same way (start-up checks are
    computed identically or broadcast from rank 0, see :mod:`dgpo.distributed`), so only rank 0 prints.
    """
    from dgpo import distributed

    if distributed.is_main():
        console = Console(stderr=True)
        if traceback_too and debugging():
            console.print(Text("".join(traceback.format_exception(err)).rstrip()), soft_wrap=True)
        message = " ".join(str(err).split("\n")).strip() or type(err).__name__
        console.print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)  # one line, never folded
    raise typer.Exit(2) from err


def refuse_launcher(command: str) -> None:
    """``dgpo eval`` and ``dgpo compare`` do not split their work over processes: started by a launcher, every
    process would redo (and rewrite) the whole job, so refuse before any work."""
    from dgpo import distributed

    if distributed.world_size() > 1:
        fail(
            ValueError(
                f"run dgpo {command} as a single process; it was started with WORLD_SIZE={distributed.world_size()} "
                "(torchrun / accelerate launch), and only dgpo train uses several processes"
            )
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
    batch_size: int | None = typer.Option(None, help="Prompts per generate call (default: 8 transformers, 256 vLLM)."),
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
        check_range("k", k, 1, flag="--k")
        check_range("temperature", temperature, 0, flag="--temperature")
        check_range("top_p", top_p, 0, 1, open_low=True, flag="--top-p")
        check_range("max_new_tokens", max_new_tokens, 1, flag="--max-new-tokens")
        check_range("limit", limit, 1, flag="--limit")
        check_range("batch_size", batch_size, 1, flag="--batch-size")
        given = {
            "benchmarks": benchmarks, "k": k, "temperature": temperature, "top_p": top_p,
            "max_new_tokens": max_new_tokens, "limit": limit, "batch_size": batch_size, "backend": backend,
            "seed": seed, "template": prompt_template,
        }  # fmt: skip
        cfg = EvalConfig(model=model, out=out, **{key: value for key, value in given.items() if value is not None})
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

    from dgpo.train.run import check_setting, run_training
    from dgpo.train.run_config import load_config

    flat = {
        ("output_dir",): output_dir, ("model",): model, ("dataset",): dataset, ("seed",): seed,
        ("rl", "objective"): objective, ("rl", "objective_kwargs", "n"): n, ("rl", "objective_kwargs", "m"): m,
        ("rl", "objective_kwargs", "eps_low"): eps_low, ("rl", "objective_kwargs", "eps_high"): eps_high,
        ("rl", "advantage"): advantage, ("rl", "aggregation"): aggregation, ("rl", "max_steps"): steps,
        ("rl", "learning_rate"): lr, ("warm_start", "steps"): warm_start_steps, ("task", "name"): task,
    }  # fmt: skip
    from dgpo import distributed

    overrides: dict = {}
    for path, value in flat.items():
        if value is not None:
            node = overrides
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = value
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
            flags = {"--steps": ("rl.max_steps", steps), "--lr": ("rl.learning_rate", lr),
                     "--warm-start-steps": ("warm_start.steps", warm_start_steps)}  # fmt: skip
            for flag, (key, value) in flags.items():
                check_setting(key, value, flag)
            cfg = load_config(config, overrides)
        run_training(cfg, resume=resume is not None, overwrite=overwrite)
    except USER_ERRORS as err:
        # Every rank fails a start-up check the same way (dgpo.distributed.on_main), so all of them get here and
        # leave the process group together before exiting; left to interpreter exit, gloo's teardown could abort
        # one rank (SIGABRT) and torchrun would report that instead of the CLI's exit code.
        distributed.close()
        fail(err)
    distributed.close()


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
    from dgpo.train.run_config import merge, read_overrides, task_name

    refuse_launcher("compare")
    try:
        check_range("seeds", seeds, 1, flag="--seeds")
        check_range("steps", steps, 1, flag="--steps")
        check_range("minutes", minutes, 0, open_low=True, flag="--minutes")
        base = read_overrides(config) if config is not None else {}
        if task is not None:
            base = merge(base, {"task": {"name": task}})
        name = task_name(base)
        if name not in TASKS:
            raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
        study = FRONTIER_PRESETS[(name, quick)]
        if objectives:
            chosen = objectives
        else:
            chosen = ",".join(study.objectives if frontier else QUICK_OBJECTIVES if quick else DEFAULT_OBJECTIVES)
        levels = _passes(passes) if passes else study.passes if frontier else ()
        if seeds is None and (quick or frontier):
            seeds = study.seeds if frontier else QUICK_SEEDS
        if frontier:  # the study's budget: fewer generation batches and Avg@1, unless given
            steps = steps if steps is not None else study.steps
            base = merge(STUDY_OVERRIDES, base)
        base = merge(base, {key: value for key, value in (("model", model), ("dataset", dataset)) if value})
        given = {"seeds": seeds, "steps": steps, "minutes": minutes, "baseline": baseline}
        spec = CompareSpec(
            out=out, objectives=(chosen,), stress=stress, base=base, passes=levels,
            **{key: value for key, value in given.items() if value is not None},
        )  # fmt: skip
        run_compare(spec)
    except USER_ERRORS as err:
        fail(err)


def _passes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"--passes must be comma-separated integers >= 1, got {text!r}") from None


if __name__ == "__main__":
    app()
