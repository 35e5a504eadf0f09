"""The six evaluation benchmarks of the paper, shipped as package data (see eval_sets/PROVENANCE.md)."""

from __future__ import annotations

import json
from importlib import resources

#: Benchmark name → display name, in the paper's table order.
BENCHMARKS = {
    "aime24": "AIME24",
    "aime25": "AIME25",
    "amc23": "AMC23",
    "math500": "MATH500",
    "minerva_math": "Minerva",
    "olympiadbench": "OlympiadBench",
}


def load_benchmark(name: str) -> list[dict[str, str]]:
    """Rows ``{"id", "problem", "answer"}`` of a shipped benchmark, in file order."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; valid benchmarks: {', '.join(BENCHMARKS)}")
    path = resources.files("dgpo.data").joinpath("eval_sets", f"{name}.jsonl")
    with path.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return [{"id": row["id"], "problem": row["problem"], "answer": str(row["answer"])} for row in rows]


def parse_benchmarks(text: str) -> list[str]:
    """A comma-separated list of benchmark names (``all`` for the six), validated."""
    names = list(BENCHMARKS) if text.strip() == "all" else [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown or not names:
        raise ValueError(
            f"unknown benchmark(s) {', '.join(unknown) or '(none)'}; valid benchmarks: {', '.join(BENCHMARKS)}"
        )
    return names
