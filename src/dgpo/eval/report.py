"""Summaries: ``results.json`` and a markdown table in the paper's layout ("Avg@k / Pass@k", one column per
benchmark, unweighted mean last)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from dgpo.data.benchmarks import BENCHMARKS
from dgpo.eval.passk import k_values, summarize_benchmark
from dgpo.eval.samples import SampleKey


def summarize(samples: dict[SampleKey, dict], benchmarks: list[str], k: int, problems: dict[str, list[str]]) -> dict:
    """Per-benchmark Avg@k / Pass@k' and their unweighted mean over benchmarks."""
    by_problem: dict[str, dict[str, list[bool]]] = {b: defaultdict(list) for b in benchmarks}
    for (bench, pid, index), record in sorted(samples.items(), key=lambda item: item[0][2]):
        if bench in by_problem and pid in problems[bench] and index < k:
            by_problem[bench][pid].append(bool(record["correct"]))
    per_bench = {}
    for bench in benchmarks:
        missing = [pid for pid in problems[bench] if pid not in by_problem[bench]]
        if missing:
            raise ValueError(f"k={k} is larger than the samples present: {bench}/{missing[0]} has none")
        per_bench[bench] = summarize_benchmark(by_problem[bench], k)
    mean = {
        "avg": sum(r["avg"] for r in per_bench.values()) / len(per_bench),
        "pass": {kk: sum(r["pass"][kk] for r in per_bench.values()) / len(per_bench) for kk in k_values(k)},
    }
    return {"k": k, "benchmarks": per_bench, "mean": mean}


def markdown_table(results: dict, model_name: str) -> str:
    """The paper's layout: one row per model, cells "Avg@k / Pass@k" in percent."""
    k = results["k"]
    names = list(results["benchmarks"])
    header = "| Model | " + " | ".join(BENCHMARKS[b] for b in names) + " | Avg. |"
    cells = [_cell(results["benchmarks"][b], k) for b in names] + [_cell(results["mean"], k)]
    lines = [
        f"Avg@{k} / Pass@{k} (%)",
        "",
        header,
        "|---" * (len(names) + 2) + "|",
        f"| {model_name} | " + " | ".join(cells) + " |",
        "",
        "Pass@k' (%), unbiased estimator:",
        "",
        "| Benchmark | " + " | ".join(f"Pass@{kk}" for kk in k_values(k)) + " |",
        "|---" * (len(k_values(k)) + 1) + "|",
    ]
    for b in names:
        row = results["benchmarks"][b]["pass"]
        lines.append(f"| {BENCHMARKS[b]} | " + " | ".join(f"{100 * row[kk]:.1f}" for kk in k_values(k)) + " |")
    mean = results["mean"]["pass"]
    lines.append("| Avg. | " + " | ".join(f"{100 * mean[kk]:.1f}" for kk in k_values(k)) + " |")
    return "\n".join(lines) + "\n"


def _cell(entry: dict, k: int) -> str:
    return f"{100 * entry['avg']:.1f} / {100 * entry['pass'][k]:.1f}"


def write_results(out: Path, results: dict, model_name: str) -> str:
    """Write ``results.json`` and ``results.md``; return the markdown."""
    table = markdown_table(results, model_name)
    serialisable = json.loads(json.dumps(results, default=str))
    (out / "results.json").write_text(json.dumps(serialisable, indent=2) + "\n")
    (out / "results.md").write_text(table)
    return table
