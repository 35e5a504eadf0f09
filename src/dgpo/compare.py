"""``dgpo compare``: the embedded task for every objective × seed, held-out evaluation, mean ± 95% CI.

Each seed gets one warm start (task split, model init and supervised pass), shared by all objectives, so the
objectives differ only in RL. Every run has a fixed budget (steps and minutes, printed up front) and lives in
``OUT/runs/<objective>-seed<s>``; a run with ``results.json`` is finished and skipped on a re-run, an unfinished
one resumes from its last checkpoint. ``OUT/table.md`` reports, per objective, held-out accuracy after RL as
mean ± 95% Student-t interval over seeds, and says which intervals overlap the best one.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from dgpo.fileio import write_atomically
from dgpo.losses import LOSSES
from dgpo.stats import Interval, t_interval
from dgpo.train.run_config import RunConfig, load_config, merge

DEFAULT_OBJECTIVES = ("grpo", "dapo", "cispo", "gppo", "ce_gppo", "aspo", "dgpo")
QUICK_OBJECTIVES = ("grpo", "cispo", "dgpo")
#: Seeds per objective of ``dgpo compare --quick`` (``CompareSpec.seeds`` otherwise).
QUICK_SEEDS = 2
#: Provokes the left-boundary divergence: 4 optimiser passes per generation batch (ratios drift far from 1, many
#: negative-advantage tokens fall below 1−ε) and a 10× higher learning rate than the default.
STRESS_OVERRIDES = {"rl": {"num_iterations": 4, "learning_rate": 2e-4}}


@dataclass
class CompareSpec:
    """One comparison; its defaults are ``dgpo compare``'s (the CLI reads them from here)."""

    out: Path
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
    seeds: int = 3
    steps: int = 60
    minutes: float = 3.0
    stress: bool = False
    base: dict = field(default_factory=dict)  # RunConfig overrides (nested dict), e.g. from --config

    def __post_init__(self) -> None:
        unknown = [o for o in self.objectives if o not in LOSSES]
        if unknown:
            raise ValueError(f"unknown objective(s) {', '.join(unknown)}; valid objectives: {', '.join(LOSSES)}")
        if self.seeds < 1 or self.steps < 1 or not self.minutes > 0:
            raise ValueError(
                f"need seeds >= 1, steps >= 1, minutes > 0; got {self.seeds}, {self.steps}, {self.minutes}"
            )

    def run_config(self, objective: str | None, seed: int, output_dir: Path) -> RunConfig:
        rl = {"max_steps": self.steps, "max_minutes": self.minutes}
        if objective is not None:
            rl["objective"] = objective
        overrides = merge(self.base, STRESS_OVERRIDES) if self.stress else self.base
        return load_config(None, merge(overrides, {"output_dir": str(output_dir), "seed": seed, "rl": rl}))


def run_compare(spec: CompareSpec, console: Console | None = None) -> dict:
    """Run (or resume) every objective × seed and write ``table.md``, ``summary.json`` and the plots."""
    from dgpo.train.run import check_config, held_out, prepare_model, quiet_libraries, run_training

    console = console or Console()
    out = spec.out
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a directory")
    quiet_libraries()
    runs = [(objective, seed) for seed in range(spec.seeds) for objective in spec.objectives]
    console.print(
        f"[bold]compare[/bold]: {len(spec.objectives)} objectives × {spec.seeds} seeds = {len(runs)} runs; "
        f"budget per run {spec.steps} RL steps or {spec.minutes:g} min, whichever comes first; one warm start per "
        f"seed{'; STRESS preset' if spec.stress else ''} → {out}"
    )
    for seed in range(spec.seeds):
        base = spec.run_config(None, seed, out / "warm" / f"seed{seed}")
        check_config(base)
        Path(base.output_dir).mkdir(parents=True, exist_ok=True)
        model_path, _, test_rows = prepare_model(base, Path(base.output_dir), console)
        held_out(base, model_path, test_rows, "before", Path(base.output_dir), console)
    for index, (objective, seed) in enumerate(runs, start=1):
        run_dir = out / "runs" / f"{objective}-seed{seed}"
        if (run_dir / "results.json").exists():
            console.print(f"[{index}/{len(runs)}] {run_dir.name}: finished, skipped")
            continue
        console.print(f"[{index}/{len(runs)}] {run_dir.name}")
        warm = out / "warm" / f"seed{seed}"
        run_dir.mkdir(parents=True, exist_ok=True)
        if not (run_dir / "warm_start").exists():
            shutil.copytree(warm / "warm_start", run_dir / "warm_start")
        shutil.copy(warm / "held_out_before.json", run_dir / "held_out_before.json")
        run_training(spec.run_config(objective, seed, run_dir), console, resume=True)
    return summarize_compare(spec, console)


def run_summary(run_dir: Path) -> dict:
    """Held-out results and stability diagnostics of one finished run."""
    results = json.loads((run_dir / "results.json").read_text())
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rewards = [r["reward"] for r in rows if r.get("reward") is not None]
    entropies = [r["entropy"] for r in rows if r.get("entropy") is not None]
    ln_max = max((r.get("weight/ln_vs_pg_max") or 0.0 for r in rows), default=0.0)
    tail = rewards[-3:] or [0.0]
    # Collapse: the policy stopped earning reward, or its entropy blew up (the failure soft clipping invites).
    collapsed = (sum(tail) / len(tail) < 0.1) or (bool(entropies) and entropies[-1] > 3 * max(entropies[0], 1e-6))
    return {
        "before": results["before"],
        "after": results["after"],
        "steps": rows[-1]["step"] if rows else 0,
        "ln_weight_vs_pg_max": ln_max,
        "entropy_first": entropies[0] if entropies else None,
        "entropy_last": entropies[-1] if entropies else None,
        "reward_first": rewards[0] if rewards else None,
        "reward_last3": sum(tail) / len(tail),
        "collapsed": collapsed,
    }


def summarize_compare(spec: CompareSpec, console: Console) -> dict:
    from dgpo.plot import plot_runs, plot_weights

    per_objective: dict[str, list[dict]] = {}
    for objective in spec.objectives:
        per_objective[objective] = [
            run_summary(spec.out / "runs" / f"{objective}-seed{seed}") for seed in range(spec.seeds)
        ]
    intervals = {
        objective: {
            "greedy": t_interval([r["after"]["greedy"] for r in runs]),
            "change": t_interval([r["after"]["greedy"] - r["before"]["greedy"] for r in runs]),
            "avg": t_interval([r["after"]["avg"] for r in runs]),
            "pass": t_interval([r["after"]["pass"] for r in runs]),
        }
        for objective, runs in per_objective.items()
    }
    table = comparison_table(spec, per_objective, intervals)
    write_atomically(spec.out / "table.md", table)
    summary = {
        "objectives": per_objective,
        "intervals": {o: {k: vars(v) for k, v in i.items()} for o, i in intervals.items()},
    }
    write_atomically(spec.out / "summary.json", json.dumps(summary, indent=2))
    plot_weights(spec.out / "weights.png", spec.objectives)
    plot_runs(sorted((spec.out / "runs").iterdir()), spec.out / "curves.png")
    console.print(table, markup=False, highlight=False, soft_wrap=True)
    return summary


def comparison_table(spec: CompareSpec, per_objective: dict, intervals: dict[str, dict[str, Interval]]) -> str:
    k = spec.run_config(None, 0, spec.out).held_out.k
    best = max(intervals, key=lambda o: intervals[o]["greedy"].mean)
    before = t_interval([r["before"]["greedy"] for r in next(iter(per_objective.values()))])  # one per seed
    lines = [
        f"Held-out accuracy after RL (%), mean ± 95% t-interval over {spec.seeds} seed(s); "
        f"{spec.steps} steps or {spec.minutes:g} min per run{' — STRESS preset' if spec.stress else ''}.",
        f"Greedy accuracy before RL (the shared warm starts): {before.format()}.",
        "",
        f"| objective | greedy | change vs before (pts) | Avg@{k} | Pass@{k} | overlaps best? "
        "| max LN w/PG | collapsed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for objective, i in intervals.items():
        runs = per_objective[objective]
        overlap = "best" if objective == best else ("yes" if i["greedy"].overlaps(intervals[best]["greedy"]) else "no")
        ln = max(r["ln_weight_vs_pg_max"] for r in runs)
        collapsed = sum(r["collapsed"] for r in runs)
        lines.append(
            f"| `{objective}` | {i['greedy'].format()} | {i['change'].format()} | {i['avg'].format()} | "
            f"{i['pass'].format()} | {overlap} | {ln:.3g} | {collapsed}/{len(runs)} |"
        )
    overlapping = [o for o in intervals if o != best and intervals[o]["greedy"].overlaps(intervals[best]["greedy"])]
    lines += [
        "",
        f"Best mean greedy accuracy: `{best}`. "
        + (
            f"Its interval overlaps those of {', '.join(f'`{o}`' for o in overlapping)}: with {spec.seeds} seed(s) "
            "these differences are not resolved."
            if overlapping
            else "Its interval overlaps no other objective's."
        ),
        "max LN w/PG: the largest ratio-to-PG weight on a left-boundary token over all steps and seeds "
        "(soft clipping ≫ 1 when r → 0; DGPO < 1). collapsed: runs whose last rewards fell below 0.1 or whose "
        "entropy tripled.",
    ]
    return "\n".join(lines) + "\n"
