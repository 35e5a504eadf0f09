"""``dgpo compare``: every arm (objective and its parameters) × seed × off-policy level, then paired statistics.

Each seed gets one warm start (task split, model init and supervised pass), shared by every arm and level, so
the arms differ only in RL and every comparison can be *paired*: ``arm − baseline`` on the same seed removes the
seed-to-seed variance of the warm starts (:mod:`dgpo.compare_report`). What is compared — arms, seeds, levels,
budget, presets — is the :class:`~dgpo.compare_spec.CompareSpec`.

Runs live in ``OUT/runs/<arm>[-p<passes>]-seed<s>``; a run with ``results.json`` is finished and skipped on a
re-run, an unfinished one resumes from its last checkpoint, so a killed comparison loses at most one run's work
since its last checkpoint. Imports flow one way: this module → :mod:`dgpo.compare_report` →
:mod:`dgpo.compare_spec`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from rich.console import Console

from dgpo.compare_spec import CompareSpec
from dgpo.fileio import write_atomically


def run_compare(spec: CompareSpec, console: Console | None = None) -> dict:
    """Run (or resume) every arm × level × seed, then write ``table.md``, ``summary.json`` and the plots."""
    from dgpo.compare_report import summarize_compare
    from dgpo.eval.backends import check_model_available
    from dgpo.train.run import (
        check_config,
        evaluate_held_out,
        load_rows,
        prepare_model,
        quiet_libraries,
        run_training,
    )

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
            evaluate_held_out(base, model_path, test_rows, "before", Path(base.output_dir), console)
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
