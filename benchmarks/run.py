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
from verifier import run as run_verifier

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=64, help="sequences B (issue 8's full size is 64)")
    parser.add_argument("--tokens", type=int, default=1024, help="tokens T (issue 8's full size is 8192)")
    parser.add_argument("--dtypes", default="float32,bfloat16", help="comma-separated: float32, bfloat16")
    parser.add_argument("--repeats", type=int, default=15, help="timed repeats (median reported)")
    parser.add_argument("--only", choices=["objectives", "verifier"], help="run one benchmark group")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "latest.json")
    args = parser.parse_args()

    console = Console()
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    console.print(f"[bold]dgpo benchmarks[/bold] on {machine}, {torch.get_num_threads()} threads")
    results = {"machine": machine, "objectives": {}}
    if args.only != "objectives":
        results["verifier"] = verifier = run_verifier()
        print_verifier(console, verifier)
    for dtype_name in [] if args.only == "verifier" else args.dtypes.split(","):
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
    markdown.write_text(to_markdown(results["objectives"]) if results["objectives"] else "")
    console.print(f"wrote {args.out} and {markdown} (paste the latter into docs/benchmarks.md)")


def print_verifier(console: Console, verifier: dict) -> None:
    table = Table(title="Verifier (2 workers) vs raw math-verify in one process, same run")
    for column in ("measure", "items", "items/s", "seconds", "accepted"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for name, row in verifier.items():
        items = row.get("answers") or row.get("pairs")
        per_s = row.get("per_s", items / row["seconds"] if "seconds" in row else float("nan"))
        seconds = row.get("seconds", items / per_s)
        accepted = f"{100 * row['accepted']:.1f}%" if "accepted" in row else "-"
        table.add_row(name, str(items), f"{per_s:.0f}", f"{seconds:.2f}", accepted)
    console.print(table)
    raw = verifier.get("pairs_raw_one_process")
    if raw:
        console.print(f"pairs/s vs raw math-verify: {verifier['pairs_fast_path']['per_s'] / raw['per_s']:.1f}×")


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
