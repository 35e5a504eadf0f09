"""Figures: the weight functions of every objective, and training curves of runs (matplotlib, Agg backend)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import yaml

from dgpo.diagnostics import weight_vs_pg
from dgpo.losses import LOSSES

#: Curves of `dgpo plot RUN_DIR ...`: (metrics.jsonl key, panel title).
CURVES = (
    ("reward", "reward (train samples)"),
    ("entropy", "entropy"),
    ("region/ln", "LN fraction"),
    ("region/hp", "HP fraction"),
    ("weight/vs_pg_max", "max weight vs PG"),
    ("weight/ln_vs_pg_max", "max LN weight vs PG"),
    ("grad_norm", "grad norm"),
    ("completions/mean_length", "completion length"),
)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_weights(out: str | Path, objectives: Sequence[str] | None = None, eps: float = 0.2):
    """w/r against r for each objective: one panel for Â > 0, one for Â < 0; trust region shaded, LN/HP marked.

    Returns the figure (one line per objective per panel).
    """
    plt = _pyplot()
    names = list(objectives or LOSSES)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=False)
    ratios = np.concatenate([np.geomspace(0.02, 1 - 1e-3, 120), np.linspace(1.0, 4.0, 120)])
    for ax, advantage, title in ((axes[0], 1.0, "Â > 0 (HP: r > 1+ε)"), (axes[1], -1.0, "Â < 0 (LN: r < 1−ε)")):
        for name in names:
            ax.plot(ratios, weight_vs_pg(name, ratios.tolist(), advantage), label=name, lw=1.6)
        ax.axvspan(1 - eps, 1 + eps, color="grey", alpha=0.15, label=f"trust region ε={eps:g}")
        region = (1 + eps, ratios[-1]) if advantage > 0 else (ratios[0], 1 - eps)
        ax.axvspan(*region, color="tab:red", alpha=0.05)
        ax.text(np.mean(region), 0.02, "HP" if advantage > 0 else "LN", transform=ax.get_xaxis_transform(), ha="center")
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("ratio r = π/π_old")
        ax.set_ylabel("w / r (1 = plain PG)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, ncol=2)
    fig.suptitle("Log-prob-gradient weight relative to PG (DGPO decays to 0 on LN; soft clipping diverges)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return fig


def run_label(run: Path) -> str:
    """Legend text from a run's config.yaml: objective, its parameters, seed."""
    config_path = run / "config.yaml"
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return run.name
    if not isinstance(config, dict) or not isinstance(config.get("rl", {}), dict):
        return run.name
    rl = config.get("rl", {})
    params = ",".join(f"{k}={v}" for k, v in (rl.get("objective_kwargs") or {}).items())
    return f"{rl.get('objective', '?')}{'(' + params + ')' if params else ''} seed {config.get('seed', '?')}"


def warn_on_stderr(message: str) -> None:
    from rich.console import Console
    from rich.text import Text

    Console(stderr=True).print(Text.assemble(("warning:", "yellow"), " ", message), soft_wrap=True)


def read_metrics(run: Path, warn: Callable[[str], None] = warn_on_stderr) -> list[dict]:
    """The metrics lines of ``run``; lines that are not JSON objects with a ``step`` are skipped with a warning.

    A live run may be caught mid-write (a torn last line), so that is no error; a file without one valid line is.
    """
    path = Path(run) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no metrics.jsonl in {run}")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    rows, bad = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
        else:
            bad.append(number)
    if not rows:
        raise ValueError(f"{path} holds no valid metrics line" + (f" ({len(bad)} unreadable)" if bad else ""))
    if bad == [len(lines)]:
        warn(f"{path}: skipped the torn last line {bad[0]} (the run may still be writing it)")
    elif bad:
        warn(f"{path}: skipped {len(bad)} unreadable line(s): {', '.join(map(str, bad[:10]))}")
    return rows


def held_out_results(run: Path) -> dict | None:
    """``results.json`` of a finished embedded run (greedy accuracy before and after RL), else None."""
    try:
        results = json.loads((run / "results.json").read_text(encoding="utf-8"))
        float(results["before"]["greedy"]), float(results["after"]["greedy"])  # present, or the run has no bars
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return results


def plot_runs(runs: Sequence[str | Path], out: str | Path):
    """Training curves of several runs overlaid (one line per run per panel), plus held-out accuracy bars.

    Returns the figure.
    """
    plt = _pyplot()
    runs = [Path(r) for r in runs]
    if not runs:
        raise ValueError("give at least one run directory")
    data = {run: read_metrics(run) for run in runs}
    fig, axes = plt.subplots(3, 3, figsize=(15, 11))
    flat = axes.flatten()
    for ax, (key, title) in zip(flat, CURVES, strict=False):
        for run, rows in data.items():
            points = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
            if points:
                steps, values = zip(*points, strict=True)
                ax.plot(steps, values, label=run_label(run), lw=1.2)
        if key.startswith("weight/"):  # soft clipping's LN weights span orders of magnitude
            ax.set_yscale("symlog", linthresh=1.0)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    accuracy = flat[len(CURVES)]
    labels, before, after = [], [], []
    for run in runs:
        r = held_out_results(run)
        if r is not None:
            labels.append(run_label(run))
            before.append(100 * r["before"]["greedy"])
            after.append(100 * r["after"]["greedy"])
    x = np.arange(len(labels))
    accuracy.bar(x - 0.2, before, 0.4, label="before RL")
    accuracy.bar(x + 0.2, after, 0.4, label="after RL")
    accuracy.set_xticks(x, labels, rotation=30, ha="right", fontsize=7)
    accuracy.set_title("held-out greedy accuracy (%)")
    accuracy.legend(fontsize=8)
    flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    return fig
