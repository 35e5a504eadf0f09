"""``dgpo compare``: every arm (objective and its parameters) × seed × off-policy level, then paired statistics.

Each seed gets one warm start (task split, model init and supervised pass), shared by every arm and level, so
the arms differ only in RL and every comparison can be *paired*: ``arm − baseline`` on the same seed removes the
seed-to-seed variance of the warm starts (:mod:`dgpo.compare_report`). An arm is an objective name, optionally with
parameters: ``dgpo(n=2,m=2)``. The off-policy axis (``passes``) is the number of optimiser passes over each
generation batch (TRL's ``num_iterations``): at 1 every update is on-policy, and the more passes, the further the
policy drifts from the one that sampled the batch. Every level runs the same number of generation batches at the
same learning rate.

Runs live in ``OUT/runs/<arm>[-p<passes>]-seed<s>``; a run with ``results.json`` is finished and skipped on a
re-run, an unfinished one resumes from its last checkpoint, so a killed comparison loses at most one run's work
since its last checkpoint.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console

from dgpo.fileio import write_atomically
from dgpo.losses import LOSSES, get_loss
from dgpo.train.run_config import RunConfig, load_config, merge, task_name

DEFAULT_OBJECTIVES = ("grpo", "dapo", "cispo", "gppo", "ce_gppo", "aspo", "dgpo")
#: The objective every other is paired against, when compared and no other is chosen.
DEFAULT_BASELINE = "grpo"
QUICK_OBJECTIVES = ("grpo", "cispo", "dgpo")
#: Seeds per arm of ``dgpo compare --quick`` (``CompareSpec.seeds`` otherwise).
QUICK_SEEDS = 3
#: Off-policy levels of ``dgpo compare --frontier --quick``.
QUICK_PASSES = (1, 4, 16)
#: The full off-policy study (``dgpo compare --frontier``): levels, objectives, seeds and RL steps at the base
#: 2 passes (20 steps = 10 generation batches per run at every level; about 1.4 h on the 2-core machine).
STUDY_PASSES = (1, 2, 4, 8, 16)
STUDY_OBJECTIVES = ("grpo", "dapo", "cispo", "gppo", "dgpo")
STUDY_SEEDS = 5
STUDY_STEPS = 20
#: ``--frontier --quick``: 16 steps = 8 generation batches per run, so that it stays under 20 min on the 2-core
#: machine (10 batches took 21 min 24 s there).
QUICK_STUDY_STEPS = 16
#: Under the user's --config in both studies: held-out Avg@1/Pass@1 beside greedy accuracy (5 s per evaluation on
#: the 2-core machine instead of 16 s for Avg@4, over 27 or 125 evaluations).
STUDY_OVERRIDES = {"held_out": {"k": 1}}
#: The embedded task of every comparison: 3-digit addition after 250 supervised warm-start steps, where RL has room.
#: Measured on the 2-core machine (3 seeds, defaults otherwise): greedy 56.2 / 40.5 / 69.0% after the warm start,
#: +30.0 / +18.5 / +21.8 points after 60 GRPO steps. With 200 warm-start steps the seeds start at 50.7 / 22.5 / 15.8%
#: (one barely learns), with 300 at 62–74% and end at the 91–98% ceiling; the 2-digit task of ``dgpo train`` starts
#: at 55–83% and ends near its 95% ceiling. A --config overrides it.
COMPARE_TASK = {"task": {"digits": 3}, "warm_start": {"steps": 250}}
#: The comparison settings of each embedded task under the user's --config (countdown's own come from its
#: ``TASK_PRESETS`` entry in :mod:`dgpo.train.run_config`).
COMPARE_TASKS = {"addition": COMPARE_TASK, "countdown": {}}


@dataclass(frozen=True)
class StudyPreset:
    """The shape of ``dgpo compare --frontier [--quick]`` on one task: arms, off-policy levels, seeds, and RL steps
    at the base passes (``steps // num_iterations`` generation batches per run at every level)."""

    objectives: tuple[str, ...]
    passes: tuple[int, ...]
    seeds: int
    steps: int


#: (task, quick) → the frontier study. A countdown run costs several times an addition run (completions of ~110
#: tokens instead of ~10, a 1,000-step warm start of ~5 min per seed), so its studies run 8 generation batches per
#: run, and the quick one 2 seeds at 1 and 8 passes (where the addition study's objectives parted): docs/results.md.
FRONTIER_PRESETS = {
    ("addition", False): StudyPreset(STUDY_OBJECTIVES, STUDY_PASSES, STUDY_SEEDS, STUDY_STEPS),
    ("addition", True): StudyPreset(QUICK_OBJECTIVES, QUICK_PASSES, QUICK_SEEDS, QUICK_STUDY_STEPS),
    ("countdown", False): StudyPreset(STUDY_OBJECTIVES, (1, 2, 4, 8), 5, 16),
    ("countdown", True): StudyPreset(QUICK_OBJECTIVES, (1, 8), 2, 16),
}
#: Held-out rows of a ``dgpo compare --model`` run's dataset (for the before/after accuracy), unless the config
#: sets ``held_out.rows``.
MODEL_HELD_OUT_ROWS = 200
#: Provokes the left-boundary divergence: 4 optimiser passes per generation batch (ratios drift far from 1, many
#: negative-advantage tokens fall below 1−ε) and a 10× higher learning rate than the default.
STRESS_OVERRIDES = {"rl": {"num_iterations": 4, "learning_rate": 2e-4}}


@dataclass(frozen=True)
class Arm:
    """An objective with the parameters it differs from its defaults in (``params`` sorted by field order)."""

    objective: str
    params: tuple[tuple[str, float], ...] = ()

    @property
    def label(self) -> str:
        """``dgpo`` or ``dgpo(n=2,m=2)``."""
        if not self.params:
            return self.objective
        return f"{self.objective}({','.join(f'{k}={v:g}' for k, v in self.params)})"

    @property
    def slug(self) -> str:
        """The label as a directory name: ``dgpo-n2-m2``."""
        return "-".join([self.objective, *(f"{k}{v:g}" for k, v in self.params)])


_ARM = re.compile(r"^\s*([a-z_]+)\s*(?:\((.*)\))?\s*$")


def parse_arm(text: str) -> Arm:
    """``"dgpo"`` or ``"dgpo(n=2, m=2)"`` → :class:`Arm`; unknown names, parameters or values raise ``ValueError``.

    Parameters equal to the objective's defaults are dropped, so ``dgpo(n=1,m=2)`` is the arm ``dgpo``.
    """
    match = _ARM.match(text)
    if not match:
        raise ValueError(f"cannot read objective {text!r}; write a name or name(key=value,...), e.g. dgpo(n=2,m=2)")
    name, inside = match.group(1), match.group(2)
    if name not in LOSSES:
        raise ValueError(f"unknown objective(s) {name}; valid objectives: {', '.join(LOSSES)}")
    given: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in (inside or "").split(","))):
        key, sep, value = item.partition("=")
        try:
            given[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"objective {text!r}: {item!r} is not key=number") from None
        if not sep:
            raise ValueError(f"objective {text!r}: {item!r} is not key=number")
    config = get_loss(name, **given).config  # checks names and ranges
    defaults = asdict(LOSSES[name]())
    params = tuple((k, v) for k, v in asdict(config).items() if k in given and v != defaults[k])
    return Arm(name, params)


def parse_arms(text: str) -> tuple[Arm, ...]:
    """A comma-separated list of arms; commas inside parentheses belong to the arm."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    arms = tuple(parse_arm(part) for part in parts if part.strip())
    labels = [arm.label for arm in arms]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ValueError(f"objective(s) listed twice: {', '.join(repeated)}")
    if not arms:
        raise ValueError("no objective given")
    return arms


@dataclass
class CompareSpec:
    """One comparison; its defaults are ``dgpo compare``'s (the CLI reads them from here)."""

    out: Path
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES  # arms: names or name(key=value,...)
    seeds: int = 3
    steps: int = 60
    minutes: float = 3.0
    stress: bool = False
    baseline: str | None = None  # None: DEFAULT_BASELINE when compared, else the first objective
    passes: tuple[int, ...] = ()  # off-policy levels; () = one level, the run config's num_iterations
    base: dict = field(default_factory=dict)  # RunConfig overrides (nested dict), e.g. from --config
    arms: tuple[Arm, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.arms = parse_arms(",".join(self.objectives))
        if self.seeds < 1 or self.steps < 1 or not self.minutes > 0:
            raise ValueError(
                f"need seeds >= 1, steps >= 1, minutes > 0; got {self.seeds}, {self.steps}, {self.minutes}"
            )
        bad = [p for p in self.passes if not (isinstance(p, int) and p >= 1)]
        if bad or len(set(self.passes)) != len(self.passes):
            raise ValueError(f"--passes must be distinct integers >= 1, got {','.join(map(str, self.passes))}")
        labels = [arm.label for arm in self.arms]
        if self.baseline is None:
            self.baseline = DEFAULT_BASELINE if DEFAULT_BASELINE in labels else labels[0]
        self.baseline = parse_arm(self.baseline).label
        if self.baseline not in labels:
            raise ValueError(
                f"baseline {self.baseline} is not among the compared objectives "
                f"({', '.join(arm.label for arm in self.arms)}); add it or choose another with --baseline"
            )

    @property
    def levels(self) -> tuple[int | None, ...]:
        """The off-policy levels (passes per generation batch); (None,) when the run config decides."""
        return self.passes or (None,)

    def shared_overrides(self) -> dict:
        """The run-config overrides every run of the comparison shares: the comparison task under the user's config,
        held-out rows for a --model run that sets none, and the stress preset."""
        overrides = merge(COMPARE_TASKS.get(task_name(self.base), {}), self.base)  # an unknown task fails in TaskConfig
        if overrides.get("model") is not None and "rows" not in overrides.get("held_out", {}):
            overrides = merge(overrides, {"held_out": {"rows": MODEL_HELD_OUT_ROWS}})
        return merge(overrides, STRESS_OVERRIDES) if self.stress else overrides

    @property
    def base_iterations(self) -> int:
        """Passes per generation batch of the run config without ``--passes`` (the default run's 2)."""
        return load_config(None, self.shared_overrides()).rl.num_iterations

    @property
    def generations(self) -> int:
        """Generation batches per run: ``steps`` optimiser steps at the base passes (60 steps / 2 = 30)."""
        return max(1, self.steps // self.base_iterations)

    def run_config(self, arm: Arm | None, seed: int, output_dir: Path, passes: int | None = None) -> RunConfig:
        overrides = self.shared_overrides()
        rl: dict = {"max_steps": self.steps, "max_minutes": self.minutes}
        if passes is not None:  # the same generation batches at every level: steps, budget, saves scale with passes
            base_rl = load_config(None, overrides).rl
            rl.update(
                num_iterations=passes,
                max_steps=self.generations * passes,
                max_minutes=self.minutes * passes / base_rl.num_iterations,
                # checkpoints only at generation-cycle boundaries (TRL does not save its buffered generations)
                save_steps=passes * max(1, base_rl.save_steps // base_rl.num_iterations),
            )
        if arm is not None:
            rl.update(objective=arm.objective, objective_kwargs=dict(arm.params))
        overrides = merge(overrides, {"output_dir": str(output_dir), "seed": seed, "rl": rl})
        if arm is not None:  # the arm's parameters replace, not extend, any given for another objective
            overrides["rl"]["objective_kwargs"] = dict(arm.params)
        return load_config(None, overrides)

    def run_dir(self, arm: Arm, seed: int, passes: int | None) -> Path:
        level = "" if passes is None else f"-p{passes}"
        return self.out / "runs" / f"{arm.slug}{level}-seed{seed}"


def run_compare(spec: CompareSpec, console: Console | None = None) -> dict:
    """Run (or resume) every arm × level × seed, then write ``table.md``, ``summary.json`` and the plots."""
    from dgpo.compare_report import summarize_compare
    from dgpo.eval.backends import check_model_available
    from dgpo.train.run import check_config, held_out, load_rows, prepare_model, quiet_libraries, run_training

    console = console or Console()
    out = spec.out
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a directory")
    quiet_libraries()
    runs = [(arm, passes, seed) for seed in range(spec.seeds) for passes in spec.levels for arm in spec.arms]
    # Every check before the first directory is made: a comparison that cannot run leaves nothing behind.
    for arm, passes, seed in runs[: len(spec.arms) * len(spec.levels)]:
        check_config(spec.run_config(arm, seed, spec.run_dir(arm, seed, passes), passes))
    first = spec.run_config(None, 0, out)
    if not first.embedded:
        check_model_available(first.model)
    load_rows(first)  # the dataset exists and is usable
    count = len(spec.passes)
    levels = f" × {count} level{'s' if count > 1 else ''} (passes {','.join(map(str, spec.passes))})" if count else ""
    budget = (
        f"{spec.steps} RL steps or {spec.minutes:g} min"
        if not spec.passes
        else f"{spec.generations} generation batches (passes × {spec.generations} steps) or passes × "
        f"{spec.minutes / spec.base_iterations:g} min"
    )
    console.print(
        f"[bold]compare[/bold]: {len(spec.arms)} objectives{levels} × {spec.seeds} seeds = {len(runs)} runs; "
        f"budget per run {budget}, whichever comes first; one warm start per seed; paired against "
        f"{spec.baseline}{'; STRESS preset' if spec.stress else ''} → {out}",
        soft_wrap=True,
    )
    for seed in range(spec.seeds):
        base = spec.run_config(None, seed, out / "warm" / f"seed{seed}")
        check_config(base)
        Path(base.output_dir).mkdir(parents=True, exist_ok=True)
        model_path, _, test_rows = prepare_model(base, Path(base.output_dir), console)
        if test_rows:
            held_out(base, model_path, test_rows, "before", Path(base.output_dir), console)
    for index, (arm, passes, seed) in enumerate(runs, start=1):
        run_dir = spec.run_dir(arm, seed, passes)
        if (run_dir / "results.json").exists():
            console.print(f"[{index}/{len(runs)}] {run_dir.name}: finished, skipped")
            continue
        console.print(f"[{index}/{len(runs)}] {run_dir.name}")
        warm = out / "warm" / f"seed{seed}"
        run_dir.mkdir(parents=True, exist_ok=True)
        share_warm_start(warm, run_dir)
        run_training(spec.run_config(arm, seed, run_dir, passes), console, resume=True)
    return summarize_compare(spec, console)


def share_warm_start(warm: Path, run_dir: Path) -> None:
    """Give ``run_dir`` its seed's warm start and held-out "before" results (when there are any).

    Both are written whole or not at all: the model is copied under another name and renamed when complete, so a
    kill mid-copy never leaves a warm start that a re-run would take as complete and fail to load.
    """
    if (warm / "warm_start").exists() and not (run_dir / "warm_start").exists():
        partial = run_dir / "warm_start.partial"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(warm / "warm_start", partial)
        os.replace(partial, run_dir / "warm_start")
    if (warm / "held_out_before.json").exists():
        write_atomically(run_dir / "held_out_before.json", (warm / "held_out_before.json").read_text())
