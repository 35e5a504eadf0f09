"""The paper's evaluation: k samples per problem, Avg@k and unbiased Pass@k, resumable (``dgpo eval``)."""

from dgpo.eval.passk import k_values, pass_at_k, summarize_benchmark
from dgpo.eval.runner import EvalConfig, run_eval

__all__ = ["EvalConfig", "k_values", "pass_at_k", "run_eval", "summarize_benchmark"]
