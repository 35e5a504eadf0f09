"""The report of ``dgpo compare``: per-run summaries, paired statistics against the baseline, tables and plots.

Every arm shares its seed's warm start with the baseline, so the comparison is paired: for each level and seed,
``d = accuracy(arm) − accuracy(baseline)``, reported as mean ± paired 95% t-interval over seeds with wins and
losses out of n (:func:`dgpo.stats.paired_difference`). The absolute columns (mean ± t-interval of accuracy, change
from the warm start) stay, but their intervals include the warm starts' spread, which the paired one removes.

It reads the comparison's :class:`~dgpo.compare_spec.CompareSpec` and the finished run directories; the runs
(:mod:`dgpo.compare`) call it, never the other way round.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from rich.console import Console

from dgpo.compare_spec import CompareSpec
from dgpo.fileio import write_atomically
from dgpo.metrics import GRAD_ABS_SUM, GRAD_SHARE_KEYS
from dgpo.plot import plot_dynamics, plot_frontier, plot_runs, plot_weights, read_metrics
from dgpo.stats import Interval, PairedDifference, paired_difference, t_interval

#: Region keys whose sum is the fraction of active tokens outside the trust region.
OUTSIDE_KEYS = ("region/ln", "region/hp", "region/lp", "region/hn")
#: A run collapsed when its held-out greedy accuracy after RL is below ``COLLAPSE_KEPT`` of the warm start's (it lost
#: more than half of what it knew), the mean reward of its last three generation batches fell below
#: ``COLLAPSE_REWARD_FRACTION`` of its first three's, or its entropy tripled. Relative, not absolute: warm starts of
#: the embedded task range from 15% to 50% greedy, and sampled rewards at T = 1 sit near 0.05–0.3.
COLLAPSE_KEPT = 0.5
COLLAPSE_REWARD_FRACTION = 0.25
#: TRL's mean completion length (tokens) of each generation batch.
LENGTH_KEY = "completions/mean_length"


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def run_summary(run_dir: Path) -> dict:
    """Held-out results and stability diagnostics of one finished run."""
    results = json.loads((run_dir / "results.json").read_text())
    rows = read_metrics(run_dir)
    rewards = [r["reward"] for r in rows if r.get("reward") is not None]
    entropies = [r["entropy"] for r in rows if r.get("entropy") is not None]
    lengths = [r[LENGTH_KEY] for r in rows if r.get(LENGTH_KEY) is not None]
    ln_max = max((r.get("weight/ln_vs_pg_max") or 0.0 for r in rows), default=0.0)
    outside = [sum(r.get(k) or 0.0 for k in OUTSIDE_KEYS) for r in rows if "region/ln" in r]
    # The run's shares: each step's shares weighted by its Σ|Â·w| (steps without gradient count for nothing).
    weights = [r.get(GRAD_ABS_SUM) or 0.0 for r in rows]
    total = sum(weights)
    shares = {
        k: (sum((r.get(k) or 0.0) * w for r, w in zip(rows, weights, strict=True)) / total if total > 0 else None)
        for k in GRAD_SHARE_KEYS
    }
    head, tail = rewards[:3] or [0.0], rewards[-3:] or [0.0]
    before, after = results.get("before"), results.get("after")
    # Collapse: the policy stopped earning reward, its entropy blew up (the failure soft clipping invites), or it
    # forgot what the warm start knew.
    collapsed = (
        statistics.fmean(tail) < COLLAPSE_REWARD_FRACTION * statistics.fmean(head)
        or (bool(entropies) and entropies[-1] > 3 * max(entropies[0], 1e-6))
        or (before is not None and after is not None and after["greedy"] < COLLAPSE_KEPT * before["greedy"])
    )
    return {
        "before": before,
        "after": after,
        "steps": rows[-1]["step"] if rows else 0,
        "ln_weight_vs_pg_max": ln_max,
        "outside_mean": _mean(outside),
        "outside_max": max(outside, default=None),
        "grad_share": shares,
        "grad_share_ln_max": max((r.get("grad_share/ln") or 0.0 for r in rows), default=0.0),
        "entropy_first": entropies[0] if entropies else None,
        "entropy_last": entropies[-1] if entropies else None,
        # means of the first and last three logged lengths (logged once per generation batch)
        "length_first3": _mean(lengths[:3]),
        "length_last3": _mean(lengths[-3:]),
        "reward_first": rewards[0] if rewards else None,
        "reward_first3": statistics.fmean(head),
        "reward_last3": statistics.fmean(tail),
        "collapsed": collapsed,
    }


def level_key(passes: int | None) -> str:
    return "default" if passes is None else str(passes)


def collect(spec: CompareSpec) -> dict[str, dict[str, list[dict]]]:
    """level → arm label → the per-seed run summaries (seed order)."""
    return {
        level_key(passes): {
            arm.label: [run_summary(spec.run_dir(arm, seed, passes)) for seed in range(spec.seeds)] for arm in spec.arms
        }
        for passes in spec.levels
    }


def paired(runs: list[dict], baseline: list[dict], metric: str = "greedy") -> PairedDifference | None:
    """The paired difference of held-out ``metric`` after RL, None without held-out results."""
    if any(r["after"] is None for r in runs + baseline):
        return None
    return paired_difference([r["after"][metric] for r in runs], [r["after"][metric] for r in baseline])


def level_statistics(by_arm: dict[str, list[dict]], baseline: str) -> dict[str, dict]:
    """Per arm: absolute intervals, the paired difference to the baseline, collapse count, diagnostics."""
    out = {}
    for label, runs in by_arm.items():
        evaluated = all(r["after"] is not None for r in runs)
        stats: dict = {"collapsed": sum(r["collapsed"] for r in runs), "n": len(runs)}
        if evaluated:
            stats["greedy"] = t_interval([r["after"]["greedy"] for r in runs])
            stats["change"] = t_interval([r["after"]["greedy"] - r["before"]["greedy"] for r in runs])
            stats["avg"] = t_interval([r["after"]["avg"] for r in runs])
            stats["pass"] = t_interval([r["after"]["pass"] for r in runs])
            stats["paired"] = paired(runs, by_arm[baseline]) if label != baseline else None
        for key in ("entropy_first", "entropy_last", "length_first3", "length_last3"):
            stats[key] = _mean([r[key] for r in runs if r.get(key) is not None])
        outside = [r["outside_mean"] for r in runs if r["outside_mean"] is not None]
        stats["outside_mean"] = _mean(outside)
        stats["ln_weight_vs_pg_max"] = max(r["ln_weight_vs_pg_max"] for r in runs)
        for key in GRAD_SHARE_KEYS:  # mean over seeds of each run's share
            region = key.removeprefix("grad_share/")
            stats[f"grad_share_{region}"] = _mean(
                [r["grad_share"][key] for r in runs if r["grad_share"][key] is not None]
            )
        out[label] = stats
    return out


def _format(value, scale: float = 100.0, digits: int = 1) -> str:
    return "–" if value is None else f"{scale * value:.{digits}f}"


def level_table(spec: CompareSpec, passes: int | None, stats: dict[str, dict], k: int) -> list[str]:
    level = "" if passes is None else f"{passes} pass{'es' if passes != 1 else ''} per generation batch — "
    lines = [
        f"**{level}held-out greedy accuracy after RL (%)**, {spec.seeds} seed(s); Δ = paired difference to "
        f"`{spec.baseline}` on the same seeds (mean ± 95% t-interval, wins/losses).",
        "",
        f"| objective | greedy | Δ vs {spec.baseline} (pts) | wins/losses | change vs before (pts) | Avg@{k} "
        f"| Pass@{k} | entropy first→last | length first→last | outside TR % | grad share LN/HP/HN % "
        "| max LN w/PG | collapsed |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, s in stats.items():
        if "greedy" in s:
            p: PairedDifference | None = s["paired"]
            delta = "baseline" if label == spec.baseline else (p.format() + (" *" if p.resolved() else ""))
            wins = "–" if p is None else f"{p.wins}/{p.losses}"
            cells = [s["greedy"].format(), delta, wins, s["change"].format(), s["avg"].format(), s["pass"].format()]
        else:
            cells = ["–"] * 6
        cells += [
            f"{_format(s['entropy_first'], 1.0, 2)}→{_format(s['entropy_last'], 1.0, 2)}",
            f"{_format(s['length_first3'], 1.0, 0)}→{_format(s['length_last3'], 1.0, 0)}",
            _format(s["outside_mean"], 100.0, 2),
            "/".join(_format(s[f"grad_share_{region}"], 100.0, 1) for region in ("ln", "hp", "hn")),
            f"{s['ln_weight_vs_pg_max']:.3g}",
            f"{s['collapsed']}/{s['n']}",
        ]
        lines.append(f"| `{label}` | " + " | ".join(cells) + " |")
    return lines


def comparison_table(spec: CompareSpec, statistics_by_level: dict, before: list[float] | None) -> str:
    k = spec.run_config(None, 0, spec.out).held_out.k
    budget = (
        f"{spec.steps} steps or {spec.minutes:g} min per run"
        if not spec.passes
        else f"{spec.generations} generation batches per run at every level"
    )
    lines = [
        f"Held-out accuracy after RL (%), mean ± 95% t-interval over {spec.seeds} seed(s); "
        f"{budget}{' — STRESS preset' if spec.stress else ''}.",
    ]
    if before:
        lines.append(f"Greedy accuracy before RL (the shared warm starts): {t_interval(before).format()}.")
    for passes in spec.levels:
        lines += ["", *level_table(spec, passes, statistics_by_level[level_key(passes)], k)]
    lines += [
        "",
        "Δ: paired difference to the baseline on the same seeds; `*` marks an interval that excludes 0. "
        "outside TR: mean fraction of active tokens outside the trust region (LN+HP+LP+HN) over the run's steps. "
        "grad share: the share of each run's Σ|Â·w| (the log-prob-gradient magnitude) on LN, HP and HN tokens, mean "
        "over seeds. entropy: the policy's mean token entropy at the first and last step; length: mean completion "
        "tokens of the first and last three generation batches (both means over seeds). "
        "max LN w/PG: the largest ratio-to-PG weight "
        "on a left-boundary token (soft clipping ≫ 1 when r → 0; DGPO < 1). collapsed: runs that ended below "
        f"{COLLAPSE_KEPT:g}× their warm start's greedy accuracy, whose last three rewards fell below "
        f"{COLLAPSE_REWARD_FRACTION:g}× their first three, or whose entropy tripled.",
    ]
    return "\n".join(lines) + "\n"


def _jsonable(stats: dict) -> dict:
    out = {}
    for key, value in stats.items():
        if isinstance(value, PairedDifference):
            out[key] = {**vars(value.interval), "wins": value.wins, "losses": value.losses}
        elif isinstance(value, Interval):
            out[key] = vars(value)
        else:
            out[key] = value
    return out


def summarize_compare(spec: CompareSpec, console: Console) -> dict:
    runs = collect(spec)
    statistics_by_level = {level: level_statistics(by_arm, spec.baseline) for level, by_arm in runs.items()}
    first = next(iter(next(iter(runs.values())).values()))
    before = [r["before"]["greedy"] for r in first] if all(r["before"] for r in first) else None
    table = comparison_table(spec, statistics_by_level, before)
    write_atomically(spec.out / "table.md", table)
    summary = {
        "baseline": spec.baseline,
        "passes": list(spec.passes),
        "seeds": spec.seeds,
        "runs": runs,
        "statistics": {
            level: {label: _jsonable(s) for label, s in by_arm.items()} for level, by_arm in statistics_by_level.items()
        },
    }
    write_atomically(spec.out / "summary.json", json.dumps(summary, indent=2))
    plot_weights(spec.out / "weights.png", list(dict.fromkeys(arm.objective for arm in spec.arms)))
    # Training curves of one level (the most off-policy one with --passes): every run would be too many lines.
    level = max(spec.passes) if spec.passes else None
    plot_runs(
        [spec.run_dir(arm, seed, level) for arm in spec.arms for seed in range(spec.seeds)],
        spec.out / "curves.png",
        groups=[arm.label for arm in spec.arms for _ in range(spec.seeds)],  # one colour per objective
    )
    if len(spec.passes) >= 2:
        plot_frontier(spec.out / "frontier.png", summary)
    dynamics = {
        passes or spec.base_iterations: {
            arm.label: [spec.run_dir(arm, seed, passes) for seed in range(spec.seeds)] for arm in spec.arms
        }
        for passes in spec.levels
    }
    plot_dynamics(spec.out / "dynamics.png", dynamics)
    console.print(table, markup=False, highlight=False, soft_wrap=True)
    return summary
