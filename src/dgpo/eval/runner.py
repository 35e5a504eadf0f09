"""``dgpo eval``: sample k completions per problem, score them with the math reward, summarise.

Resumable: every scored sample is appended to ``OUT/samples.jsonl`` as it is produced, and a re-run with the
same ``OUT`` generates only the samples that are missing. The generation settings are written to
``OUT/eval_config.json``; resuming with different settings is refused (k may grow).
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

from dgpo.data.benchmarks import load_benchmark, parse_benchmarks
from dgpo.data.prompts import R1_TEMPLATE
from dgpo.eval.backends import SamplingSettings, check_model_path, make_backend, sample_and_score
from dgpo.eval.report import summarize, write_results
from dgpo.eval.samples import SampleWriter, load_samples
from dgpo.rewards.math import MathVerifier

#: Settings that must match between a run and its resumption (k and the problem limit may change).
FIXED_ON_RESUME = ("model", "temperature", "top_p", "max_new_tokens", "template", "seed")


@dataclass
class EvalConfig:
    """Everything ``dgpo eval`` needs; the defaults are the paper's protocol (k = 32, T = 0.6, top-p = 0.95)."""

    model: str
    out: str
    benchmarks: list[str] = field(default_factory=lambda: parse_benchmarks("all"))
    k: int = 32
    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int = 32768
    limit: int | None = None  # first N problems of each benchmark (quick runs)
    batch_size: int | None = None  # prompts per generate call; backend default when None
    backend: str = "auto"
    seed: int = 0
    template: str = R1_TEMPLATE
    reward_workers: int = 2
    reward_timeout: float = 5.0

    def __post_init__(self) -> None:
        if isinstance(self.benchmarks, str):
            self.benchmarks = parse_benchmarks(self.benchmarks)
        else:
            parse_benchmarks(",".join(self.benchmarks))
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        SamplingSettings(self.temperature, self.top_p, self.max_new_tokens)

    @property
    def sampling(self) -> SamplingSettings:
        return SamplingSettings(self.temperature, self.top_p, self.max_new_tokens)


class RateColumn(ProgressColumn):
    """Problems per second."""

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.2f} problems/s" if speed else "-- problems/s", style="progress.data.speed")


def _check_resume(out: Path, cfg: EvalConfig) -> None:
    path = out / "eval_config.json"
    current = asdict(cfg)
    if path.exists():
        previous = json.loads(path.read_text())
        changed = [key for key in FIXED_ON_RESUME if previous.get(key) != current[key]]
        if changed:
            details = ", ".join(f"{key}: {previous.get(key)!r} → {current[key]!r}" for key in changed)
            raise ValueError(f"{out} holds samples made with other settings ({details}); use a new --out")
    path.write_text(json.dumps(current, indent=2) + "\n")


def _sample_seed(seed: int, bench: str, pid: str, index: int) -> int:
    # Stable across processes (unlike hash()), so a resumed run seeds each batch the same way.
    return zlib.crc32(f"{seed}/{bench}/{pid}/{index}".encode())


def run_eval(cfg: EvalConfig, console: Console | None = None, progress: bool = True, generate: bool = True) -> dict:
    """Generate what is missing, score it, and write ``results.json`` / ``results.md``; returns the results.

    With ``generate=False`` only the samples already in ``OUT`` are summarised (an error if fewer than k).
    """
    console = console or Console()
    if generate:
        check_model_path(cfg.model)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    _check_resume(out, cfg)
    samples_path = out / "samples.jsonl"
    done = load_samples(samples_path)

    problems = {b: load_benchmark(b)[: cfg.limit] for b in cfg.benchmarks}
    todo = [
        (bench, row, index)
        for bench, rows in problems.items()
        for row in rows
        for index in range(cfg.k)
        if (bench, row["id"], index) not in done
    ]
    total_problems = sum(len(rows) for rows in problems.values())
    missing_per_problem = Counter((bench, row["id"]) for bench, row, _ in todo)
    console.print(
        f"{total_problems} problems × k={cfg.k}: {len(done)} samples on disk, {len(todo)} to generate → {out}"
    )
    if todo and generate:
        backend = make_backend(cfg.model, cfg.backend, cfg.batch_size)
        console.print(f"backend: [bold]{backend.name}[/bold] (batch {backend.batch_size})")
        _generate(cfg, backend, todo, samples_path, missing_per_problem, total_problems, console, progress)

    results = summarize(
        load_samples(samples_path), cfg.benchmarks, cfg.k, {b: [r["id"] for r in rows] for b, rows in problems.items()}
    )
    table = write_results(out, results, Path(cfg.model).name or cfg.model)
    console.print(table, markup=False, highlight=False, soft_wrap=True)
    return results


def _generate(cfg, backend, todo, samples_path, missing_per_problem, total_problems, console, show) -> None:
    verifier = MathVerifier(workers=cfg.reward_workers, timeout=cfg.reward_timeout)
    writer = SampleWriter(samples_path)
    columns = (
        TextColumn("[bold]eval"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
    )
    try:
        with Progress(*columns, console=console, disable=not show) as bar:
            task = bar.add_task("eval", total=total_problems, status="")
            bar.update(task, completed=total_problems - len(missing_per_problem))
            correct = 0
            for start in range(0, len(todo), backend.batch_size):
                batch = todo[start : start + backend.batch_size]
                seeds = [_sample_seed(cfg.seed, bench, row["id"], index) for bench, row, index in batch]
                rows = [row for _, row, _ in batch]
                generations, scored = sample_and_score(backend, verifier, rows, cfg.template, cfg.sampling, seeds)
                records = [
                    {
                        "benchmark": bench,
                        "id": row["id"],
                        "sample": index,
                        "answer": row["answer"],
                        "pred": result.pred,
                        "correct": result.reward == 1.0,
                        "status": result.status,
                        "completion_tokens": generation.tokens,
                        "completion": generation.text,
                    }
                    for (bench, row, index), generation, result in zip(batch, generations, scored, strict=True)
                ]
                writer.write(records)
                correct += sum(r["correct"] for r in records)
                finished = 0
                for bench, row, _ in batch:
                    missing_per_problem[(bench, row["id"])] -= 1
                    finished += missing_per_problem[(bench, row["id"])] == 0
                bar.update(task, advance=finished, status=f"{correct}/{start + len(batch)} correct")
    finally:
        writer.close()
        verifier.close()
    counts = verifier.metrics()
    console.print(
        "reward: "
        + ", ".join(
            f"{key.split('/')[1]} {int(value)}" for key, value in counts.items() if value and key != "reward/scored"
        )
    )
