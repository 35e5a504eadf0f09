"""``dgpo eval``: sample k completions per problem, score them with the math reward, summarise.

Resumable: every scored sample is appended to ``OUT/samples.jsonl`` as it is produced, and a re-run with the
same ``OUT`` generates only the samples that are missing. The generation settings are written to
``OUT/eval_config.json``, a local model as its absolute path; resuming with different settings is refused (k may
grow). Settings bind only once a sample is on disk, and a start that fails before its first sample leaves ``OUT``
as it found it (:class:`dgpo.claim.DirClaim`).
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

from dgpo.claim import DirClaim
from dgpo.data.benchmarks import load_benchmark, parse_benchmarks
from dgpo.data.prompts import R1_TEMPLATE
from dgpo.eval.backends import (
    SamplingSettings,
    check_backend,
    check_model_available,
    check_template,
    make_backend,
    sample_and_score,
)
from dgpo.eval.report import summarize, write_results
from dgpo.eval.samples import SampleWriter, load_samples
from dgpo.fileio import write_atomically
from dgpo.ranges import check_range
from dgpo.rewards.pool import DEFAULT_TIMEOUT, DEFAULT_WORKERS
from dgpo.rewards.verifier import MathVerifier

#: Settings that must match between a run and its resumption (k and the problem limit may change).
FIXED_ON_RESUME = ("model", "temperature", "top_p", "max_new_tokens", "template", "seed")


@dataclass
class EvalConfig:
    """Everything ``dgpo eval`` needs; the defaults are the paper's protocol (k = 32, T = 0.6, top-p = 0.95).

    It checks every value itself (the sampling ranges through :class:`SamplingSettings`); ``dgpo eval`` only adds
    the option's name to its message.
    """

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
    reward_workers: int = DEFAULT_WORKERS
    reward_timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        if isinstance(self.benchmarks, str):
            self.benchmarks = parse_benchmarks(self.benchmarks)
        else:
            parse_benchmarks(",".join(self.benchmarks))
        check_range("k", self.k, 1)
        check_range("limit", self.limit, 1)  # None: every problem
        check_range("batch_size", self.batch_size, 1)  # None: the backend's default
        check_range("reward_workers", self.reward_workers, 1)
        check_range("reward_timeout", self.reward_timeout, 0, open_low=True)
        SamplingSettings(self.temperature, self.top_p, self.max_new_tokens)  # checks the sampling ranges
        check_template(self.template)
        check_backend(self.backend)

    @property
    def sampling(self) -> SamplingSettings:
        return SamplingSettings(self.temperature, self.top_p, self.max_new_tokens)


class RateColumn(ProgressColumn):
    """Problems per second."""

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.2f} problems/s" if speed else "-- problems/s", style="progress.data.speed")


def model_key(model: str) -> str:
    """A local model as its absolute path (so ``./m`` and ``/abs/m`` are the same model), a hub id as given."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else model


def _check_resume(out: Path, cfg: EvalConfig, has_samples: bool) -> str:
    """Refuse other settings than the samples on disk were made with; returns the ``eval_config.json`` text to
    write with the first new sample.

    Settings without samples do not bind: an ``eval_config.json`` with no sample next to it is what a failed start
    of an earlier version left behind, and must not block the corrected re-run.
    """
    path = out / "eval_config.json"
    current = asdict(cfg)
    if path.exists() and has_samples:
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise ValueError(f"{path} is not valid JSON ({err}); move it away to resume {out}") from err
        previous["model"] = model_key(str(previous.get("model", "")))  # earlier versions stored it as given
        changed = [key for key in FIXED_ON_RESUME if previous.get(key) != current[key]]
        if changed:
            details = ", ".join(f"{key}: {previous.get(key)!r} → {current[key]!r}" for key in changed)
            raise ValueError(f"{out} holds samples made with other settings ({details}); use a new --out")
    return json.dumps(current, indent=2) + "\n"


def _write_settings(out: Path, text: str) -> None:
    path = out / "eval_config.json"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        write_atomically(path, text)


def _sample_seed(seed: int, bench: str, pid: str, index: int) -> int:
    # Stable across processes (unlike hash()), so a resumed run seeds each batch the same way.
    return zlib.crc32(f"{seed}/{bench}/{pid}/{index}".encode())


def run_eval(cfg: EvalConfig, console: Console | None = None, progress: bool = True, generate: bool = True) -> dict:
    """Generate what is missing, score it, and write ``results.json`` / ``results.md``; returns the results.

    With ``generate=False`` only the samples already in ``OUT`` are summarised (an error if fewer than k).
    """
    console = console or Console()
    out = Path(cfg.out)
    samples_path = out / "samples.jsonl"
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a directory")
    if generate:
        check_model_available(cfg.model)
    elif not samples_path.is_file():
        raise FileNotFoundError(f"--summary-only: {out} holds no samples.jsonl to summarise")
    cfg = dataclasses.replace(cfg, model=model_key(cfg.model))
    problems = {b: load_benchmark(b)[: cfg.limit] for b in cfg.benchmarks}
    claim = DirClaim.take(out, "--out")
    try:
        done = load_samples(samples_path)
        settings = _check_resume(out, cfg, has_samples=bool(done))
        return _run(cfg, out, problems, done, claim, console, progress, generate, settings)
    except BaseException:
        claim.release()  # no new sample written: leave --out as it was found (a resumed one keeps its samples)
        raise


def _run(cfg, out, problems, done, claim, console, progress, generate, settings) -> dict:
    samples_path = out / "samples.jsonl"
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

        def first_write() -> None:  # from here on --out is a (resumable) evaluation
            _write_settings(out, settings)
            claim.commit()

        _generate(cfg, backend, todo, samples_path, missing_per_problem, total_problems, console, progress, first_write)

    results = summarize(
        load_samples(samples_path), cfg.benchmarks, cfg.k, {b: [r["id"] for r in rows] for b, rows in problems.items()}
    )
    claim.commit()
    table = write_results(out, results, Path(cfg.model).name or cfg.model)
    console.print(table, markup=False, highlight=False, soft_wrap=True)
    return results


def _generate(cfg, backend, todo, samples_path, missing_per_problem, total_problems, console, show, first_write):
    """Sample, score and append every missing sample; ``first_write`` runs once, before the first samples land."""
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
                if first_write is not None:  # the settings go on disk with the first sample, never without one
                    first_write()
                    first_write = None
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
