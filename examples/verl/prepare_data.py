"""Convert problem/answer JSONL files into verl's RL parquet format (prompt messages + rule-based ground truth).

    python examples/verl/prepare_data.py --train /path/dapo_math_17k.jsonl --val aime24 --out data/verl

``--val`` also takes the names of dgpo's shipped benchmarks (aime24, aime25, amc23, math500, minerva_math,
olympiadbench). The prompt is the R1-distill instruction, as in the paper; the reward is dgpo's
``compute_score`` (``reward.custom_reward_function``), which reads ``reward_model.ground_truth``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from dgpo.data import BENCHMARKS, format_problem, load_benchmark, load_train_set


def to_verl_rows(rows: list[dict], source: str) -> list[dict]:
    return [
        {
            "data_source": source,
            "prompt": [{"role": "user", "content": format_problem(row["problem"])}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": row["answer"]},
            "extra_info": {"index": i, "id": row.get("id", str(i))},
        }
        for i, row in enumerate(rows)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True, help="JSONL/parquet with problem, answer")
    parser.add_argument("--val", default="aime24", help="a shipped benchmark name or a JSONL path")
    parser.add_argument("--out", type=Path, required=True, help="output folder for train.parquet and val.parquet")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    train = load_train_set(args.train)
    val = load_benchmark(args.val) if args.val in BENCHMARKS else load_train_set(args.val)
    pd.DataFrame(to_verl_rows(train, Path(args.train).stem)).to_parquet(args.out / "train.parquet")
    pd.DataFrame(to_verl_rows(val, args.val)).to_parquet(args.out / "val.parquet")
    print(f"wrote {len(train)} train and {len(val)} val rows to {args.out}")


if __name__ == "__main__":
    main()
