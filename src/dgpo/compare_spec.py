"""What a ``dgpo compare`` is: its arms, seeds, off-policy levels, budget and presets, and the run config of each run.

An arm is an objective name, optionally with parameters: ``dgpo(n=2,m=2)``. The off-policy axis (``passes``) is
the number of optimiser passes over each generation batch (TRL's ``num_iterations``): at 1 every update is
on-policy, and the more passes, the further the policy drifts from the one that sampled the batch. Every level runs
the same number of generation batches at the same learning rate.

The spec checks its own values (the CLI only adds the option's name to a message) and holds the presets of
``--quick`` and ``--frontier`` (:meth:`CompareSpec.preset`). It is read by the runs (:mod:`dgpo.compare`) and by
the report (:mod:`dgpo.compare_report`), and imports neither.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dgpo.losses import LOSSES, get_loss
from dgpo.ranges import SettingError, check_range
from dgpo.train.run_config import RunConfig, layered, load_config, merge, task_name
from dgpo.train.task import TaskConfig

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
    given: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in (inside or "").split(","))):
        key, sep, value = item.partition("=")
        try:
            given[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"objective {text!r}: {item!r} is not key=number") from None
        if not sep:
            raise ValueError(f"objective {text!r}: {item!r} is not key=number")
    config = get_loss(name, **given).config  # checks the objective's name, its parameters' names and ranges
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
        check_range("seeds", self.seeds, 1)
        check_range("steps", self.steps, 1)
        check_range("minutes", self.minutes, 0, open_low=True)
        bad = [p for p in self.passes if not (isinstance(p, int) and p >= 1)]
        if bad or len(set(self.passes)) != len(self.passes):
            raise ValueError(f"passes must be distinct integers >= 1, got {','.join(map(str, self.passes))}")
        labels = [arm.label for arm in self.arms]
        if self.baseline is None:
            self.baseline = DEFAULT_BASELINE if DEFAULT_BASELINE in labels else labels[0]
        self.baseline = parse_arm(self.baseline).label
        if self.baseline not in labels:
            raise SettingError(
                "baseline",
                f"baseline {self.baseline} is not among the compared objectives "
                f"({', '.join(arm.label for arm in self.arms)}); add it or choose another baseline",
            )

    @classmethod
    def preset(
        cls,
        out: Path,
        *,
        quick: bool = False,
        frontier: bool = False,
        task: str | None = None,
        base: dict | None = None,
        objectives: str | tuple[str, ...] | None = None,
        **given: Any,
    ) -> CompareSpec:
        """``dgpo compare [--quick] [--frontier]``: the preset's values for the fields left unset (None).

        ``--frontier``: the task's study, ``FRONTIER_PRESETS[(task, quick)]`` (its objectives, levels, seeds and
        steps), with :data:`STUDY_OVERRIDES` under ``base``. ``--quick`` alone: :data:`QUICK_OBJECTIVES` ×
        :data:`QUICK_SEEDS` seeds. Otherwise the spec's own defaults. ``objectives`` may be one comma-separated
        text of arms; ``given`` holds the other fields of the spec. ``task`` sets ``base``'s ``task.name``, and an
        unknown task fails in :class:`TaskConfig`'s own check.
        """
        base = dict(base or {})
        if task is not None:
            base = merge(base, {"task": {"name": task}})
        name = TaskConfig(name=task_name(base)).name  # an unknown task fails here, in TaskConfig's own check
        preset: dict[str, Any] = {}
        if frontier:  # the study's budget: fewer generation batches per run, and held-out Avg@1
            preset = asdict(FRONTIER_PRESETS[(name, quick)])  # its fields are CompareSpec's
            base = merge(STUDY_OVERRIDES, base)
        elif quick:
            preset = {"objectives": QUICK_OBJECTIVES, "seeds": QUICK_SEEDS}
        given["objectives"] = (objectives,) if isinstance(objectives, str) else objectives
        chosen = {key: value for key, value in given.items() if value is not None}
        return cls(out=out, base=base, **{**preset, **chosen})

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
        return layered(self.shared_overrides())["rl"]["num_iterations"]

    @property
    def generations(self) -> int:
        """Generation batches per run: ``steps`` optimiser steps at the base passes (60 steps / 2 = 30)."""
        return max(1, self.steps // self.base_iterations)

    def run_config(self, arm: Arm | None, seed: int, output_dir: Path, passes: int | None = None) -> RunConfig:
        overrides = self.shared_overrides()
        rl: dict = {"max_steps": self.steps, "max_minutes": self.minutes}
        if passes is not None:  # the same generation batches at every level: steps, budget, saves scale with passes
            base_rl = layered(overrides)["rl"]  # before this arm's values: it need not be a valid run on its own
            rl.update(
                num_iterations=passes,
                max_steps=self.generations * passes,
                max_minutes=self.minutes * passes / base_rl["num_iterations"],
                # checkpoints only at generation-cycle boundaries (TRL does not save its buffered generations)
                save_steps=passes * max(1, base_rl["save_steps"] // base_rl["num_iterations"]),
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
