"""`make bench`: every benchmark, each reported as ratios against a baseline measured in the same run.

Groups (``--only`` runs one): ``objectives`` (fwd+bwd of every objective vs TRL's GRPO formula and the DGPO
reference surrogate), ``verifier`` (answers/s vs raw math-verify), ``logprobs`` (TRL's chunked log-probs vs full
logits at V = 151,936; minutes and ~13 GB of memory at the full T = 4096), ``trainer`` (DGPOTrainer vs TRL's
GRPOTrainer step time, tiny and ~25M-parameter models). Prints a table per group, writes
benchmarks/results/latest.json and latest.md; copy the figures into docs/benchmarks.md.
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
import logprobs
import objectives
import trainer
import verifier

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
GROUPS = ("objectives", "verifier", "logprobs", "trainer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64, help="objectives: sequences B (default 64)")
    parser.add_argument("--tokens", type=int, default=8192, help="objectives: tokens T (default 8192)")
    parser.add_argument("--dtypes", default="float32,bfloat16", help="objectives: comma-separated dtypes")
    parser.add_argument("--repeats", type=int, default=30, help="objectives: timed rounds (median reported)")
    parser.add_argument("--logprob-tokens", type=int, default=4096, help="logprobs: tokens (default 4096)")
    parser.add_argument("--trainer-models", default="tiny,25M", help="trainer: comma-separated model sizes")
    parser.add_argument("--only", choices=GROUPS, help="run one benchmark group")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "latest.json")
    args = parser.parse_args()

    console = Console()
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    console.print(f"[bold]dgpo benchmarks[/bold] on {machine}, {torch.get_num_threads()} threads")
    groups = [args.only] if args.only else list(GROUPS)
    results: dict = {"machine": machine, "threads": torch.get_num_threads()}
    sections = []
    if "verifier" in groups:
        results["verifier"] = verifier.run()
        print_verifier(console, results["verifier"])
    if "objectives" in groups:
        results["objectives"] = {"batch": args.batch, "tokens": args.tokens, "rows": {}}
        for dtype_name in args.dtypes.split(","):
            rows = objectives.run(args.batch, args.tokens, DTYPES[dtype_name], args.repeats)
            results["objectives"]["rows"][dtype_name] = rows
            print_objectives(console, rows, f"({args.batch}, {args.tokens}), {dtype_name}")
        sections.append(objectives_markdown(results["objectives"]["rows"]))
    if "logprobs" in groups:
        results["logprobs"] = logprobs.run(args.logprob_tokens)
        sections.append(table_markdown("Log-probs + entropy, fwd+bwd", logprobs_rows(results["logprobs"])))
        console.print(sections[-1])
    if "trainer" in groups:
        results["trainer"] = trainer.run(args.trainer_models.split(","))
        sections.append(table_markdown("Trainer step time", trainer_rows(results["trainer"])))
        console.print(sections[-1])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    markdown = args.out.with_suffix(".md")
    markdown.write_text("\n".join(sections))
    console.print(f"wrote {args.out} and {markdown} (paste the latter into docs/benchmarks.md)")


def print_verifier(console: Console, results: dict) -> None:
    table = Table(title="Verifier (2 workers) vs raw math-verify in one process, same run")
    for column in ("measure", "items", "items/s", "seconds", "accepted"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for name, row in results.items():
        items = row.get("answers") or row.get("pairs")
        per_s = row.get("per_s", items / row["seconds"] if "seconds" in row else float("nan"))
        seconds = row.get("seconds", items / per_s)
        accepted = f"{100 * row['accepted']:.1f}%" if "accepted" in row else "-"
        table.add_row(name, str(items), f"{per_s:.0f}", f"{seconds:.2f}", accepted)
    console.print(table)
    for mine, raw in (("pairs_fast_path", "pairs_raw_one_process"), ("hard_pairs", "hard_pairs_raw_one_process")):
        if raw in results:
            console.print(f"{mine}: {results[mine]['per_s'] / results[raw]['per_s']:.1f}× raw math-verify's pairs/s")


def print_objectives(console: Console, rows: list[dict], title: str) -> None:
    table = Table(title=f"Objective fwd+bwd, {title}, CPU")
    columns = ("objective", "ms", "× trl_grpo", "× dgpo_ref", "saved × trl", "peak × trl")
    for column in columns:
        table.add_column(column, justify="right" if column != "objective" else "left")
    for row in rows:
        table.add_row(
            row["name"],
            f"{row['seconds'] * 1e3:.2f}",
            f"{row['vs_trl_grpo']:.2f}",
            f"{row['vs_dgpo_ref']:.2f}",
            f"{row['saved_vs_trl_grpo']:.2f}",
            f"{row['peak_vs_trl_grpo']:.2f}",
        )
    console.print(table)


def objectives_markdown(by_dtype: dict[str, list[dict]]) -> str:
    names = [row["name"] for row in next(iter(by_dtype.values()))]
    cells = ("ms", "× trl_grpo", "× dgpo_ref", "saved × trl_grpo", "peak × trl_grpo")
    header = "| objective |" + "".join(f" {d} {c} |" for d in by_dtype for c in cells)
    lines = [header, "|---" * (1 + len(cells) * len(by_dtype)) + "|"]
    for i, name in enumerate(names):
        row_cells = "".join(
            f" {rows[i]['seconds'] * 1e3:.2f} | {rows[i]['vs_trl_grpo']:.2f} | {rows[i]['vs_dgpo_ref']:.2f} |"
            f" {rows[i]['saved_vs_trl_grpo']:.2f} | {rows[i]['peak_vs_trl_grpo']:.2f} |"
            for rows in by_dtype.values()
        )
        lines.append(f"| `{name}` |{row_cells}")
    return "\n".join(lines) + "\n"


def logprobs_rows(result: dict) -> list[dict]:
    return [
        {
            "path": path,
            "seconds": f"{row['seconds']:.1f}",
            "× plain (time)": f"{row['time_vs_plain']:.2f}",
            "peak GiB": f"{row['peak_bytes'] / 2**30:.2f}",
            "× plain (peak)": f"{row['peak_vs_plain']:.2f}",
        }
        for path, row in result["paths"].items()
    ]


def trainer_rows(result: dict) -> list[dict]:
    rows = []
    for size, kinds in result.items():
        for kind, row in kinds.items():
            if kind in ("parameters", "loss_path"):
                continue
            shares = row["shares"]
            rows.append(
                {
                    "model": f"{size} ({kinds['parameters'] / 1e6:.1f}M)",
                    "trainer": kind,
                    "step s": f"{row['step_seconds']:.3f}",
                    "× trl_grpo": f"{row['vs_trl_grpo']:.3f}",
                    "× trl_grpo w/o generation": f"{row['vs_trl_grpo_without_generation']:.3f}",
                    "loss fwd+bwd × trl_grpo": f"{kinds['loss_path'][kind]['vs_trl_grpo']:.3f}",
                    **{f"{part} %": f"{100 * shares[part]:.1f}" for part in trainer.PARTS},
                }
            )
    return rows


def table_markdown(title: str, rows: list[dict]) -> str:
    header = list(rows[0])
    lines = [f"**{title}**", "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    lines += ["| " + " | ".join(str(row[key]) for key in header) + " |" for row in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
