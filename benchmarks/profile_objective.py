"""Profile one objective's forward + backward (or a baseline: ``trl_grpo``, ``dgpo_ref``) with torch.profiler.

    .venv/bin/python benchmarks/profile_objective.py dgpo --tokens 8192 --dtype float32

Prints the top aten operators by self CPU time over 10 steps (after 3 warm-up steps); docs/benchmarks.md quotes
these lines.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from objectives import dgpo_ref, make_batch, objective_step, trl_grpo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="an objective name, trl_grpo or dgpo_ref")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--rows", type=int, default=12, help="operators to print")
    args = parser.parse_args()
    logp, old, adv, mask = make_batch(args.batch, args.tokens, getattr(torch, args.dtype))
    step = {"trl_grpo": trl_grpo, "dgpo_ref": dgpo_ref}.get(args.name) or objective_step(args.name)

    def run() -> None:
        step(logp.detach().requires_grad_(True), old, adv, mask).backward()

    for _ in range(3):
        run()
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(10):
            run()
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
