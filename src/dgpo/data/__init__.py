"""Benchmarks (shipped), prompt templates and training-set loading."""

from dgpo.data.benchmarks import BENCHMARKS, load_benchmark, parse_benchmarks
from dgpo.data.prompts import R1_TEMPLATE, build_prompt, format_problem
from dgpo.data.train_sets import load_train_set

__all__ = [
    "BENCHMARKS",
    "R1_TEMPLATE",
    "build_prompt",
    "format_problem",
    "load_benchmark",
    "load_train_set",
    "parse_benchmarks",
]
