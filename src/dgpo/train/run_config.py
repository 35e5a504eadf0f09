"""The configuration of ``dgpo train``: nested dataclasses, the only place defaults live, and each the one place its
values are checked (in ``__post_init__``, messages naming the config key: ``rl.max_steps must be >= 1, got 0``).

YAML files and CLI flags only override fields; an unknown key, or a value of the wrong type or out of range, is an
error naming the key, raised while the config is built. The config actually used is written to
``RUN_DIR/config.yaml``, with local model/dataset paths and ``output_dir`` made absolute (see
:func:`dgpo.train.run.pin_paths`). With ``model`` and ``dataset`` unset, the run is the embedded default: a tiny
model built locally, a supervised warm-start on the arithmetic task, then RL — about 4 minutes on 2 CPU cores.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dgpo.choices import (
    DEFAULT_ADVANTAGE,
    DEFAULT_AGGREGATION,
    DEFAULT_NUM_ITERATIONS,
    DEFAULT_OBJECTIVE,
    check_choices,
)
from dgpo.eval.backends import check_template
from dgpo.ranges import SettingError, check_ranges
from dgpo.rewards.pool import DEFAULT_WORKERS
from dgpo.train.task import TaskConfig


@dataclass
class TinyModelConfig:
    """The embedded model: a Qwen2 architecture, byte-level BPE with digits split."""

    vocab_size: int = 512
    hidden_size: int = 128
    layers: int = 2

    def __post_init__(self) -> None:
        check_ranges("tiny", self, layers=">= 1")
        if self.hidden_size < 8 or self.hidden_size % 8:
            raise ValueError(f"tiny.hidden_size must be a positive multiple of 8 (4 heads), got {self.hidden_size}")


@dataclass
class WarmStartConfig:
    """Supervised warm-start of the embedded model (skipped for a given ``model``)."""

    steps: int = 200
    learning_rate: float = 2e-3
    batch_size: int = 64

    def __post_init__(self) -> None:
        check_ranges("warm_start", self, steps=">= 1", learning_rate="> 0", batch_size=">= 1")


@dataclass
class RLConfig:
    """RL settings passed to ``DGPOConfig`` (TRL's GRPOConfig + the dgpo objective).

    ``objective``, ``advantage``, ``aggregation`` and ``num_iterations`` take their defaults from :mod:`dgpo.choices`,
    where ``DGPOConfig`` reads its own, and are checked by :func:`dgpo.choices.check_choices`, as there.
    """

    objective: str = DEFAULT_OBJECTIVE
    objective_kwargs: dict[str, Any] = field(default_factory=dict)
    advantage: str = DEFAULT_ADVANTAGE
    aggregation: str = DEFAULT_AGGREGATION
    learning_rate: float = 2e-5  # 3e-4 collapsed the warm-started tiny model within 10 steps (measured)
    max_steps: int = 60
    max_minutes: float | None = None  # wall-clock budget of the RL stage; stops early (not resumable exactly)
    per_device_train_batch_size: int = 64
    gradient_accumulation_steps: int = 1
    num_generations: int = 8
    max_completion_length: int = 48
    temperature: float = 1.0
    num_iterations: int = DEFAULT_NUM_ITERATIONS
    beta: float = 0.0
    save_steps: int = 20
    reward_workers: int = DEFAULT_WORKERS
    report_to: list[str] = field(default_factory=list)  # e.g. ["wandb"] or ["tensorboard"]; metrics.jsonl always

    def __post_init__(self) -> None:
        try:
            check_choices(self.objective, self.objective_kwargs, self.advantage, self.aggregation)
        except TypeError as err:  # the objectives' configs raise TypeError for a parameter of the wrong type
            raise ValueError(f"rl.objective_kwargs: {err}") from err
        except SettingError as err:  # a parameter out of its range: keyed by where it is set here
            raise SettingError(f"rl.objective_kwargs.{err.name}", str(err)) from err
        check_ranges(
            "rl", self, max_steps=">= 1", per_device_train_batch_size=">= 1", gradient_accumulation_steps=">= 1",
            num_generations=">= 2",  # GRPO's advantages need at least two samples per prompt
            max_completion_length=">= 1", num_iterations=">= 1", save_steps=">= 1", reward_workers=">= 1",
            learning_rate="> 0", temperature="> 0", beta=">= 0", max_minutes="> 0",
        )  # fmt: skip
        cycle = self.num_iterations  # optimiser steps per generation batch (steps_per_generation = accumulation)
        if self.save_steps % cycle:
            raise SettingError(
                "rl.save_steps",
                f"rl.save_steps={self.save_steps} must be a multiple of the generation cycle ({cycle} steps): "
                "TRL does not save its buffered generations, so only cycle boundaries resume exactly",
            )


@dataclass
class HeldOutConfig:
    """Held-out evaluation before and after RL: greedy accuracy, plus Avg@k / Pass@k at ``temperature``."""

    k: int = 4
    temperature: float = 1.0
    max_new_tokens: int = 64
    # With --model/--dataset: this many training rows are held out (the same rows for every seed and objective)
    # and evaluated before and after RL; 0 evaluates nothing. The embedded task has its own test split.
    rows: int = 0

    def __post_init__(self) -> None:
        check_ranges("held_out", self, k=">= 1", temperature=">= 0", max_new_tokens=">= 1", rows=">= 0")


@dataclass
class RunConfig:
    """The whole run. Every section checks its own values when it is built, so a RunConfig that exists is a valid
    one; what a config cannot know — whether a model path exists, a reporting integration is installed — is checked
    by :func:`dgpo.train.run.check_config` and ``run_training``."""

    output_dir: str = "runs/dgpo-tiny"
    model: str | None = None  # None: the embedded tiny model
    dataset: str | None = None  # None: the embedded task; else dapo_math_17k | math | gsm8k | a JSONL/parquet path
    template: str | None = None  # None: "{problem}" for the embedded task, the R1 instruction otherwise
    seed: int = 0
    task: TaskConfig = field(default_factory=TaskConfig)
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)
    warm_start: WarmStartConfig = field(default_factory=WarmStartConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    held_out: HeldOutConfig = field(default_factory=HeldOutConfig)

    def __post_init__(self) -> None:
        if self.template is not None:
            check_template(self.template)

    @property
    def embedded(self) -> bool:
        return self.model is None


def default_of(cls: type, name: str) -> Any:
    """The default of dataclass ``cls``'s field ``name`` (its factory called for a mutable default), so that CLI
    options, help texts and other configs read a default instead of typing it again."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            if f.default is dataclasses.MISSING:
                raise ValueError(f"{cls.__name__}.{name} has no default")
            return f.default
    raise ValueError(f"{cls.__name__} has no field {name!r}")


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(cls: type, data: dict, where: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict; unknown keys and values of the wrong type raise naming the full
    key (``max_steps: "abc"`` would otherwise surface as a ``TypeError`` in the first comparison that meets it), and
    each section checks its values as it is built."""
    return _walk(cls, data, where, build=True)


def check_keys_and_types(cls: type, data: dict, where: str = "") -> None:
    """:func:`from_dict`'s key and type checks alone: a YAML file is one layer of the config, so its values are
    checked only in the config they end up in (``dgpo compare`` sets ``max_steps``, ``num_iterations`` and
    ``save_steps`` per arm after reading the file)."""
    _walk(cls, data, where, build=False)


def _walk(cls: type, data: dict, where: str, build: bool) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"config section {where or '(top)'} must be a mapping, got {type(data).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in known:
            raise ValueError(f"unknown config key {path!r}; valid keys here: {', '.join(known)}")
        sub = _dataclass_type(known[key])
        values[key] = _walk(sub, value, path, build) if sub is not None else check_type(value, hints[key], path)
    return cls(**values) if build else values


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def check_type(value: Any, hint: Any, path: str, nullable: bool = False) -> Any:
    """``value`` checked against the field's annotation (int, float, str, bool, ``X | None``, ``list[str]``,
    ``dict[str, Any]``, ``Any``); returns it, ints widened to float for float fields.

    A float field also takes a string that parses as a number: YAML 1.1 (PyYAML) reads ``1e-6`` — no dot — as
    the string "1e-6", a trap every config with a small learning rate walks into.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    or_null = " or null" if nullable else ""
    if hint is Any:
        return value
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return check_type(value, inner[0], path, nullable=True) if len(inner) == 1 else value
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint in (str, bool):
        if isinstance(value, hint):
            return value
    elif origin is list:
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return value
        raise ValueError(f"config key {path!r} must be a list of strings{or_null}, got {value!r}")
    elif origin is dict:
        if isinstance(value, dict):
            return value
        raise ValueError(f"config key {path!r} must be a mapping{or_null}, got {value!r}")
    else:
        return value
    raise ValueError(f"config key {path!r} must be {_TYPE_NAMES[hint]}{or_null}, got {value!r}")


def _dataclass_type(f: dataclasses.Field) -> type | None:
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    return type(default) if dataclasses.is_dataclass(default) else None


def merge(base: dict, overrides: dict) -> dict:
    """Deep-merge ``overrides`` into a copy of ``base``."""
    out = dict(base)
    for key, value in overrides.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


#: Settings an embedded task brings with it, applied above the defaults and below the YAML file and the flags, so
#: that ``task: {name: countdown}`` alone is a working run: its search traces need far longer completions than
#: addition's 48 tokens. Chosen by measurement on the 2-core machine (docs/results.md, "Countdown: the set-up").
TASK_PRESETS: dict[str, dict] = {
    "addition": {},
    "countdown": {
        "warm_start": {"steps": 1000, "batch_size": 32},
        # 120 RL steps: GRPO gained +14.0 / +13.75 / +15.0 points (seeds 0-2) where the shared 60 gained +7.25 (seed 0),
        # about 3 min on 2 cores (docs/results.md, "How far GRPO gets").
        "rl": {"max_completion_length": 160, "learning_rate": 3e-5, "max_steps": 120},
        "held_out": {"max_new_tokens": 160},
    },
}


def task_name(overrides: dict) -> str:
    """The task an override dict asks for (``task.name``), else the default task."""
    section = overrides.get("task")
    name = section.get("name") if isinstance(section, dict) else None
    return name if isinstance(name, str) else TaskConfig.name


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> RunConfig:
    """Defaults ← the task's preset (:data:`TASK_PRESETS`) ← YAML file ← overrides (nested dicts, e.g.
    {"rl": {"objective": "grpo"}})."""
    from_file = read_overrides(path) if path is not None else {}
    try:
        return from_dict(RunConfig, layered(merge(from_file, overrides or {})))
    except SettingError as err:  # a value the file set (and no override replaced): name the file
        if _has_key(from_file, err.name) and not _has_key(overrides or {}, err.name):
            raise SettingError(err.name, f"{path}: {err}") from err
        raise


def layered(given: dict) -> dict:
    """The nested dict of a run config before it is built and checked: defaults ← the task's preset ← ``given``.
    For callers that need a value of a layer that is not final yet (``dgpo compare`` scales ``save_steps`` by the
    passes per generation batch it reads here)."""
    return merge(merge(to_dict(RunConfig()), TASK_PRESETS.get(task_name(given), {})), given)


def _has_key(nested: dict, dotted: str) -> bool:
    """Whether ``nested`` holds the dotted key ``rl.max_steps``."""
    for part in dotted.split("."):
        if not isinstance(nested, dict) or part not in nested:
            return False
        nested = nested[part]
    return True


def read_overrides(path: str | Path) -> dict:
    """The nested dict of a YAML config file, checked against RunConfig; every defect (not YAML, not a mapping, an
    unknown key, a value of the wrong type) raises one ``ValueError`` naming the file. Its values are range-checked
    where the whole config is built (:func:`load_config`)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"config file {path} is a directory; give the YAML file")
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError(f"config file {path} is not UTF-8 text") from err
    except yaml.YAMLError as err:
        raise ValueError(f"config file {path} is not valid YAML: {_yaml_problem(err)}") from err
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ValueError(
            f"config file {path} must hold a mapping of config keys (e.g. `rl: {{objective: dgpo}}`), "
            f"not a {type(loaded).__name__}"
        )
    try:
        check_keys_and_types(RunConfig, loaded)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
    return loaded


def _yaml_problem(err: yaml.YAMLError) -> str:
    """PyYAML's message in one line: the problem and where (its own text spans several lines with a caret)."""
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        mark = err.problem_mark
        return f"{err.problem} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(err).split())


def save_config(cfg: RunConfig, path: Path) -> None:
    """Write ``config.yaml`` atomically: a kill mid-write must not leave a file that no longer reads as a run."""
    from dgpo.fileio import write_atomically

    write_atomically(path, config_text(cfg))


def config_text(cfg: RunConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
