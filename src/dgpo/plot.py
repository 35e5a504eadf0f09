"""Figures: the weight functions of every objective, training curves of runs, and the off-policy frontier of
``dgpo compare --passes`` (matplotlib, Agg backend)."""

from __future__ import annotations

import json
import math
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


#: Line styles cycled with the colours, so lines that coincide or share a colour stay distinguishable.
LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">")


def line_style(index: int, count: int) -> dict:
    """Colour, dash, marker and marker offset of the ``index``-th of ``count`` lines: all distinct up to 40 lines.

    Colour and marker cycle every 10 lines; the dash shifts by one at each cycle, so the (colour, dash) pairs of
    lines 0, 10, 20 and 30 still differ. Markers sit at staggered positions along each line, so two curves on top of
    each other still show both markers.
    """
    return {
        "color": f"C{index % 10}",
        "linestyle": LINESTYLES[(index + index // 10) % len(LINESTYLES)],
        "marker": MARKERS[index % len(MARKERS)],
        "markevery": (index / max(count, 1) * 0.12, 0.12),
        "markersize": 4.5,
    }


def grouped_line_styles(groups: Sequence[str]) -> list[dict]:
    """One style per line where lines come in groups (e.g. one objective's seeds): a colour per group, a dash and
    marker per line within its group, so that a group reads as one colour however many lines there are."""
    colours = {group: index for index, group in enumerate(dict.fromkeys(groups))}
    seen: dict[str, int] = {}
    styles = []
    for index, group in enumerate(groups):
        member = seen[group] = seen.get(group, -1) + 1
        style = line_style(member, len(groups))
        style["color"] = f"C{colours[group] % 10}"
        style["markevery"] = (index / max(len(groups), 1) * 0.12, 0.12)
        styles.append(style)
    return styles


def coincident_groups(curves: dict[str, Sequence[float]], rtol: float = 1e-6, atol: float = 1e-9) -> list[list[str]]:
    """Names grouped by numerically identical curves, in first-seen order (``[["grpo", "dapo", "gspo"], ...]``)."""
    groups: list[list[str]] = []
    for name, values in curves.items():
        for group in groups:
            if np.allclose(curves[group[0]], values, rtol=rtol, atol=atol):
                group.append(name)
                break
        else:
            groups.append([name])
    return groups


def symlog_ticks(low: float, high: float) -> tuple[list[float], list[float]]:
    """Major and minor ticks for a symlog axis with ``linthresh=1`` spanning [low, high]: plain numbers, not 10^k.

    Majors: 0, ±0.25, ±0.5, ±0.75, ±1 in the linear part, then 2, 5, 10, 20, 50, 100, … ; minors: every 0.05 in the
    linear part and 3, 4, 6, 7, 8, 9 × 10^k above.
    """
    linear_major = [0.25, 0.5, 0.75, 1.0]
    linear_minor = [round(0.05 * i, 2) for i in range(1, 20) if i % 5]
    log_major, log_minor = [], []
    for exponent in range(0, 9):
        decade = 10.0**exponent
        log_major += [2 * decade, 5 * decade, 10 * decade]
        log_minor += [m * decade for m in (3, 4, 6, 7, 8, 9)]
    positive_major, positive_minor = linear_major + log_major, linear_minor + log_minor

    def within(values: list[float]) -> list[float]:
        both = sorted({0.0, *values, *(-v for v in values)})
        return [v for v in both if low - 1e-12 <= v <= high + 1e-12]

    major = within(positive_major)
    return major, [v for v in within(positive_minor) if v not in major]


def readable_symlog(ax, low: float, high: float) -> None:
    """Symlog y axis (linear on [−1, 1], log outside) over [low, high] with labelled ticks 0, 0.25 … 1, 2, 5, 10 …

    ``linscale=1.5`` gives the linear part 1.5 decades of height, so values between 0 and 1 are readable too.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.set_yscale("symlog", linthresh=1.0, linscale=1.5)
    ax.set_ylim(low, high)
    major, minor = symlog_ticks(low, high)
    ax.yaxis.set_major_locator(FixedLocator(major))
    ax.yaxis.set_minor_locator(FixedLocator(minor))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def symlog_top(values: Sequence[float]) -> float:
    """An upper y limit a little above the largest value on a symlog axis (at least 1.2, so 1 is never the edge)."""
    largest = max([1.0, *(v for v in values if np.isfinite(v))])
    return largest * 1.25 if largest > 1 else 1.2


def plot_weights(out: str | Path, objectives: Sequence[str] | None = None, eps: float = 0.2):
    """w/r against r for each objective: one panel for Â > 0, one for Â < 0; trust region shaded, LN/HP marked.

    Returns the figure (one line per objective per panel). Each objective has its own colour, dash and markers;
    curves that are numerically identical in a panel are drawn alike and share one legend entry ("grpo = dapo").
    Each panel's legend sits below it, outside the data.
    """
    plt = _pyplot()
    names = list(objectives or LOSSES)
    fig, axes = plt.subplots(1, 2, figsize=(13, 6.2), layout="constrained")
    ratios = np.concatenate([np.geomspace(0.02, 1 - 1e-3, 120), np.linspace(1.0, 4.0, 120)])
    styles = {name: line_style(i, len(names)) for i, name in enumerate(names)}
    for ax, advantage, title in ((axes[0], 1.0, "Â > 0 (HP: r > 1+ε)"), (axes[1], -1.0, "Â < 0 (LN: r < 1−ε)")):
        curves = {name: weight_vs_pg(name, ratios.tolist(), advantage) for name in names}
        for group in coincident_groups(curves):
            for position, name in enumerate(group):  # every objective gets its line; the copies hide in the legend
                label = " = ".join(group) if position == 0 else f"_{name}"
                ax.plot(ratios, curves[name], label=label, lw=1.6, **styles[group[0]])
        ax.axvspan(1 - eps, 1 + eps, color="grey", alpha=0.15, label=f"trust region ε={eps:g}")
        region = (1 + eps, ratios[-1]) if advantage > 0 else (ratios[0], 1 - eps)
        ax.axvspan(*region, color="tab:red", alpha=0.05)
        ax.text(np.mean(region), 0.93, "HP" if advantage > 0 else "LN", transform=ax.get_xaxis_transform(), ha="center")
        ax.set_xscale("log")
        ax.set_xticks(
            [0.02, 0.05, 0.1, 0.2, 0.5, 0.8, 1, 1.2, 2, 4],
            ["0.02", "0.05", "0.1", "0.2", "0.5", "0.8", "1", "1.2", "2", "4"],
        )
        # a little below 0, so curves at 0 (hard clipping past the boundary) are not hidden by the axis line
        readable_symlog(ax, -0.06, symlog_top([v for c in curves.values() for v in c]))
        ax.set_xlabel("ratio r = π/π_old")
        ax.set_ylabel("w / r (1 = plain PG; symlog: linear below 1)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.grid(which="minor", alpha=0.1)
        ax.legend(fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
    fig.suptitle("Log-prob-gradient weight relative to PG (DGPO decays to 0 on LN; soft clipping diverges)")
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


def run_labels(runs: Sequence[Path]) -> list[str]:
    """Unique legend texts for ``runs``: :func:`run_label`, with the run directory's name appended where two runs
    share objective, parameters and seed (and the full path where the directory names collide too)."""
    first = [run_label(run) for run in runs]
    labels = [
        f"{label} [{run.name}]" if first.count(label) > 1 else label for label, run in zip(first, runs, strict=True)
    ]
    return [str(run) if labels.count(label) > 1 else label for label, run in zip(labels, runs, strict=True)]


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


def plot_runs(
    runs: Sequence[str | Path],
    out: str | Path,
    groups: Sequence[str] | None = None,
    warn: Callable[[str], None] = warn_on_stderr,
):
    """Training curves of several runs overlaid (one line per run per panel), plus held-out accuracy bars.

    Returns the figure. Each run has its own colour, dash and markers (curves that coincide stay visible), legend
    texts are unique (:func:`run_labels`), the legend sits below the panels and every bar carries its value. With
    ``groups`` (one name per run, e.g. its objective) the runs of a group share a colour and differ in dash and marker.
    Non-finite values (a NaN grad norm) are left out of a curve; a run whose key holds no finite value at all gets no
    curve in that panel, and ``warn`` says so.
    """
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    runs = [Path(r) for r in runs]
    if not runs:
        raise ValueError("give at least one run directory")
    data = {run: read_metrics(run) for run in runs}
    labels = dict(zip(runs, run_labels(runs), strict=True))
    if groups is not None and len(groups) != len(runs):
        raise ValueError(f"groups: need one name per run ({len(runs)}), got {len(groups)}")
    run_styles = grouped_line_styles(groups) if groups else [line_style(i, len(runs)) for i in range(len(runs))]
    styles = dict(zip(runs, run_styles, strict=True))
    fig, axes = plt.subplots(3, 3, figsize=(15, 11.5), layout="constrained")
    flat = axes.flatten()
    for ax, (key, title) in zip(flat, CURVES, strict=False):
        values_seen = []
        for run, rows in data.items():
            logged = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), int | float)]
            points = [(step, value) for step, value in logged if math.isfinite(value)]
            if logged and not points:
                warn(f"{run}: {key} is NaN or Inf on all {len(logged)} lines; its curve is left out")
            if points:
                steps, values = zip(*points, strict=True)
                ax.plot(steps, values, label=labels[run], lw=1.2, **styles[run])
                values_seen += values
        if key.startswith("weight/") and values_seen:  # soft clipping's LN weights span orders of magnitude
            readable_symlog(ax, min(0.0, *values_seen), symlog_top(values_seen))
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    accuracy = flat[len(CURVES)]
    bar_labels, before, after = [], [], []
    for run in runs:
        r = held_out_results(run)
        if r is not None:
            bar_labels.append(labels[run])
            before.append(100 * r["before"]["greedy"])
            after.append(100 * r["after"]["greedy"])
    x = np.arange(len(bar_labels))
    for offset, values, name, color in ((-0.2, before, "before RL", "0.75"), (0.2, after, "after RL", "0.35")):
        bars = accuracy.bar(x + offset, values, 0.4, label=name, color=color)  # greys: not confused with the runs
        accuracy.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
    accuracy.set_xticks(x, bar_labels, rotation=30, ha="right", fontsize=7)
    accuracy.set_ylim(0, max([100.0, *before, *after]) * 1.08)  # room for the values above the bars
    accuracy.set_title("held-out greedy accuracy (%)")
    accuracy.grid(axis="y", alpha=0.3)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], lw=1.2, label=labels[run], **styles[run]) for run in runs]  # every run, with data or not
    handles += accuracy.get_legend_handles_labels()[0] if bar_labels else []
    for extra in flat[len(CURVES) + 1 :]:
        extra.set_axis_off()
    fig.legend(handles=handles, loc="outside lower center", ncol=min(4, len(handles)), fontsize=9, frameon=False)
    fig.savefig(out, dpi=100)
    return fig


#: Panels of the off-policy frontier: (statistics key, title, scale to %).
FRONTIER_PANELS = (
    ("paired", "held-out greedy Δ vs baseline (pts, paired 95% CI)", 100.0),
    ("greedy", "held-out greedy accuracy after RL (%, mean)", 100.0),
    ("outside_mean", "tokens outside the trust region (%)", 100.0),
    ("collapse_rate", "runs collapsed (%)", 100.0),
    ("grad_share_ln", "share of |Â·w| on LN tokens (%)", 100.0),
    ("grad_share_hp", "share of |Â·w| on HP tokens (%)", 100.0),
    ("grad_share_hn", "share of |Â·w| on HN tokens (%)", 100.0),
    ("ln_weight_vs_pg_max", "max LN weight vs PG (symlog)", 1.0),
)
#: Panels drawn without interval bands: the absolute accuracy's interval holds the warm starts' spread across
#: seeds (15–51% here), which hides the lines; the paired panel shows the comparison without it.
NO_BANDS = ("greedy",)


def plot_frontier(out: str | Path, summary: dict):
    """The off-policy frontier of ``dgpo compare --passes``: every panel against passes per generation batch.

    One line per objective (the baseline's Δ is 0 by definition and drawn as a grey reference), bands are the 95%
    intervals over seeds where the panel has one. Returns the figure.
    """
    plt = _pyplot()
    levels = summary["passes"]
    statistics = summary["statistics"]
    labels = list(statistics[str(levels[0])])
    fig, axes = plt.subplots(2, 4, figsize=(19, 8.5), layout="constrained")
    for ax, (key, title, scale) in zip(axes.flatten(), FRONTIER_PANELS, strict=True):
        for index, label in enumerate(labels):
            style = line_style(index, len(labels))
            style.pop("markevery")
            means, lows, highs = [], [], []
            for level in levels:
                s = statistics[str(level)][label]
                value = s["collapsed"] / s["n"] if key == "collapse_rate" else s.get(key)
                if isinstance(value, dict):  # an interval: mean and half-width (NaN with one seed)
                    mean, half = value["mean"], value["half_width"]
                    means.append(scale * mean)
                    lows.append(scale * (mean - half) if half == half else np.nan)
                    highs.append(scale * (mean + half) if half == half else np.nan)
                else:
                    means.append(np.nan if value is None else scale * value)
            if key == "paired" and label == summary["baseline"]:
                ax.axhline(0.0, color="0.5", lw=1.0, label=f"{label} (baseline)")
                continue
            ax.plot(levels, means, label=label, lw=1.4, **style)
            if lows and key not in NO_BANDS:
                ax.fill_between(levels, lows, highs, color=style["color"], alpha=0.12)
        if key == "ln_weight_vs_pg_max":
            values = [statistics[str(level)][label][key] for level in levels for label in labels]
            readable_symlog(ax, 0.0, symlog_top(values))
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [str(level) for level in levels])
        ax.set_xlabel("optimiser passes per generation batch")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    handles, names = axes.flatten()[1].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=min(6, len(names)), fontsize=9, frameon=False)
    fig.suptitle(f"Off-policy frontier: {summary['seeds']} seed(s) per point, paired against {summary['baseline']}")
    fig.savefig(out, dpi=100)
    return fig


#: Panels of a study's dynamics figure: (metrics key, title). Each is read once per generation batch, from the
#: sampling policy: reward and length are logged at the step that generated the batch, and the entropy of the
#: batch's first step is that of the policy that sampled it, on its own samples.
DYNAMICS_PANELS = (
    ("reward", "reward of the sampled completions"),
    ("entropy", "token entropy of the sampled completions"),
    ("completions/mean_length", "completion length (tokens)"),
)


def per_generation_batch(rows: Sequence[dict], key: str, passes: int) -> dict[int, float]:
    """Generation batch (1, 2, …) → ``key``'s value on the batch's first optimiser step (step = (b−1)·passes + 1);
    non-finite values are left out."""
    out = {}
    for row in rows:
        value = row.get(key)
        if (row["step"] - 1) % passes == 0 and isinstance(value, int | float) and np.isfinite(value):
            out[(row["step"] - 1) // passes + 1] = float(value)
    return out


def plot_dynamics(out: str | Path, runs: dict[int, dict[str, Sequence[Path]]]):
    """Reward, entropy and completion length per generation batch: one row of panels per off-policy level (passes
    per batch), one line per objective (the mean over its seeds), so levels and objectives compare at equal data.

    ``runs``: passes → objective label → run directories (one per seed). Returns the figure.
    """
    plt = _pyplot()
    levels = list(runs)
    fig, axes = plt.subplots(len(levels), 3, figsize=(15, 3.4 * len(levels) + 1), layout="constrained", squeeze=False)
    for row_axes, passes in zip(axes, levels, strict=True):
        labels = list(runs[passes])
        for ax, (key, title) in zip(row_axes, DYNAMICS_PANELS, strict=True):
            lines = {}
            for index, label in enumerate(labels):
                curves = [per_generation_batch(read_metrics(run), key, passes) for run in runs[passes][label]]
                batches = sorted(set().union(*curves))
                means = [float(np.mean([c[b] for c in curves if b in c])) for b in batches]
                style = line_style(index, len(labels))
                style.pop("markevery")
                ax.plot(batches, means, label=label, lw=1.4, markevery=max(1, len(batches) // 8), **style)
                lines[label] = means
            # At 1 pass every objective is the same run (r = 1): say so, since the lines hide each other.
            same = len(labels) > 1 and len({len(v) for v in lines.values()}) == 1 and len(coincident_groups(lines)) == 1
            level = f"{passes} pass{'es' if passes != 1 else ''}{' (all objectives identical)' if same else ''}"
            ax.set_title(f"{title}\n{level}", fontsize=10)
            ax.set_xlabel("generation batch")
            ax.grid(alpha=0.3)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=min(6, len(names)), fontsize=9, frameon=False)
    fig.suptitle("Training dynamics per generation batch (mean over seeds)")
    fig.savefig(out, dpi=100)
    return fig
