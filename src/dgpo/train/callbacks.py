"""Trainer callbacks: ``metrics.jsonl`` (one line per logged step, flushed), a rich progress bar, a time budget.

The trainer calls every callback on every rank; the file and the bar belong to rank 0 alone (the logged metrics are
already reduced over processes), and the time budget's stop is rank 0's decision, taken by all.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from transformers import TrainerCallback

from dgpo import distributed


class JsonlMetricsCallback(TrainerCallback):
    """Appends every log (step, reward, objective metrics, loss, grad norm, …) to ``path`` and flushes it.

    On resume, lines for steps after the checkpoint are dropped first, so the file never repeats a step. Only the
    world's rank 0 touches the file: one line per step whatever the number of processes.
    """

    def __init__(self, path: Path):
        self.path = Path(path)

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.path.exists():
            kept = [line for line in self.path.read_text().splitlines() if _step(line) <= state.global_step]
            self.path.write_text("".join(line + "\n" for line in kept))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or state.global_step == 0 or "train_runtime" in logs:
            return
        record = {"step": state.global_step, **{k: _plain(v) for k, v in logs.items()}}
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()


def _step(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError):
        return math.inf  # a torn line: drop it


def _plain(value):
    return value if isinstance(value, int | float | str | bool) or value is None else float(value)


class RichProgressCallback(TrainerCallback):
    """One progress bar for RL (rank 0's): step, reward and loss, updated every log."""

    def __init__(self, console: Console | None = None, reward_key: str = "reward"):
        self.console = console or Console()
        self.reward_key = reward_key
        self.progress: Progress | None = None
        self.task = None

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self.progress = Progress(
            TextColumn("[bold]RL"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
            console=self.console,
        )
        self.progress.start()
        self.task = self.progress.add_task("rl", total=state.max_steps, completed=state.global_step, status="")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.progress is None or not logs or self.reward_key not in logs:
            return
        status = f"reward {logs[self.reward_key]:.3f}"
        if "entropy" in logs:
            status += f"  entropy {logs['entropy']:.2f}"
        self.progress.update(self.task, status=status)

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


class TimeBudgetCallback(TrainerCallback):
    """Stops training once ``minutes`` of wall-clock time have passed (checked after every step).

    Under N processes rank 0's clock decides, broadcast every step: ranks stopping at different steps would leave
    the others waiting in a collective forever.
    """

    def __init__(self, minutes: float):
        if not minutes > 0:
            raise ValueError(f"max_minutes must be > 0, got {minutes}")
        self.seconds = 60.0 * minutes
        self.start = 0.0
        self.stopped_early = False

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if distributed.broadcast_object(time.monotonic() - self.start > self.seconds):
            control.should_training_stop = True
            self.stopped_early = True
