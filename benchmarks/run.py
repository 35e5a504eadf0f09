"""`make bench`: every benchmark, each reported as ratios against a baseline measured in the same run.

Prints a table per benchmark and writes benchmarks/results/latest.json; copy the figures into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from objectives import run as run_objectives

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=64, help="sequences B (issue 8's full size is 64)")
    parser.add_argument("--tokens", type=int, default=1024, help="tokens T (issue 8's full size is 8192)")
    parser.add_argument("--dtypes", default="float32,bfloat16", help="comma-separated: float32, bfloat16")
    parser.add_argument("--repeats", type=int, default=15, help="timed repeats (median reported)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "latest.json")
    args = parser.parse_args()

    console = Console()
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    console.print(f"[bold]dgpo benchmarks[/bold] on {machine}, {torch.get_num_threads()} threads")
    results = {"machine": machine, "objectives": {}}
    for dtype_name in args.dtypes.split(","):
        rows = run_objectives(args.batch, args.tokens, DTYPES[dtype_name], args.repeats)
        results["objectives"][dtype_name] = rows
        table = Table(title=f"Objective fwd+bwd, (B, T) = ({args.batch}, {args.tokens}), {dtype_name}, CPU")
        for column in ("objective", "ms", "× trl_grpo", "× dgpo_ref", "saved MiB", "saved × trl_grpo"):
            table.add_column(column, justify="right" if column != "objective" else "left")
        for row in rows:
            table.add_row(
                row["name"],
                f"{row['seconds'] * 1e3:.2f}",
                f"{row['vs_trl_grpo']:.2f}",
                f"{row['vs_dgpo_ref']:.2f}",
                f"{row['saved_bytes'] / 2**20:.2f}",
                f"{row['saved_vs_trl_grpo']:.2f}",
            )
        console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    markdown = args.out.with_suffix(".md")
    markdown.write_text(to_markdown(results["objectives"]))
    console.print(f"wrote {args.out} and {markdown} (paste the latter into docs/benchmarks.md)")


def to_markdown(by_dtype: dict[str, list[dict]]) -> str:
    names = [row["name"] for row in next(iter(by_dtype.values()))]
    header = "| objective |" + "".join(
        f" {d} ms | {d} × trl_grpo | {d} × dgpo_ref | {d} saved × trl_grpo |" for d in by_dtype
    )
    lines = [header, "|---" * (1 + 4 * len(by_dtype)) + "|"]
    for i, name in enumerate(names):
        cells = "".join(
            f" {rows[i]['seconds'] * 1e3:.2f} | {rows[i]['vs_trl_grpo']:.2f} | {rows[i]['vs_dgpo_ref']:.2f} |"
            f" {rows[i]['saved_vs_trl_grpo']:.2f} |"
            for rows in by_dtype.values()
        )
        lines.append(f"| `{name}` |{cells}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
