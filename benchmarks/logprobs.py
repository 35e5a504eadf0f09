"""Log-probabilities without full logits: TRL 1.16's chunked log-prob + entropy vs the full-logits float32 path.

DGPOTrainer gets its log-probs and entropies from GRPOTrainer's ``_get_per_token_logps_and_entropies``, which
always runs ``trl.kernels.ChunkedLogProbFunction`` (logits computed tile by tile from the hidden states and
recomputed in backward; tests/test_logprobs.py checks that path and its gradients against the plain one). Here
the paths run forward + backward of ``Σ a·log π + Σ b·entropy`` at Qwen2.5-1.5B/0.5B-like sizes (V = 151,936,
hidden 896): the plain path, TRL's kernel with its 4096-token tile, and with dgpo's 512-token CPU tile
(:mod:`dgpo.integrations.trl_logprob_tiles`). Each measurement runs in a fresh process: peak memory is the growth
of the peak resident set over the resident set after the inputs were built, so every path pays for the weight and
its gradient alike.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

VOCAB, HIDDEN = 151_936, 896
TEMPERATURE = 1.0
#: TRL 1.16's vocabulary tile (trl.trainer.utils._CHUNKED_LOGPROB_CHUNK_SIZE).
CHUNK = 32_768


def plain(hidden, weight, targets):
    """Full float32 logits → log_softmax → gather, and the entropy from the same log-probs."""
    logits = (hidden @ weight.T).float() / TEMPERATURE
    log_probs = torch.log_softmax(logits, dim=-1)
    token_logp = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    entropy = -(log_probs.exp() * log_probs).sum(-1)
    return token_logp, entropy


def chunked(hidden, weight, targets):
    from trl.kernels import ChunkedLogProbFunction

    token_logp, entropy, *_ = ChunkedLogProbFunction.apply(
        hidden, weight, None, targets, TEMPERATURE, CHUNK, None, 1.0, ("entropy",)
    )
    return token_logp, entropy


def _resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


#: path name -> (function, token tile; None = TRL's own 4096).
PATHS = {"plain": ("plain", None), "trl_chunked": ("chunked", None), "dgpo_chunked": ("chunked", 512)}


def worker(path: str, tokens: int) -> dict:
    torch.manual_seed(0)
    hidden = torch.randn(tokens, HIDDEN).requires_grad_(True)
    weight = (0.02 * torch.randn(VOCAB, HIDDEN)).requires_grad_(True)
    targets = torch.randint(0, VOCAB, (tokens,))
    a, b = torch.randn(tokens), torch.randn(tokens)
    from dgpo.integrations.trl_logprob_tiles import token_tile

    function, tile = PATHS[path]
    fn = {"plain": plain, "chunked": chunked}[function]
    before = _resident_bytes()
    start = time.perf_counter()
    with token_tile(tile):
        token_logp, entropy = fn(hidden, weight, targets)
        ((token_logp * a).sum() + (entropy * b).sum()).backward()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return {"seconds": seconds, "peak_bytes": peak - before}


def run(tokens: int = 4096, repeats: int = 1) -> dict:
    """Median seconds and peak-memory growth of each path over ``repeats`` fresh processes (alternating)."""
    samples = {path: [] for path in PATHS}
    for _ in range(repeats):
        for path in samples:
            out = subprocess.run(
                [sys.executable, __file__, "--worker", path, "--tokens", str(tokens)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            samples[path].append(json.loads(out.strip().splitlines()[-1]))
    rows = {}
    for path, runs in samples.items():
        seconds = sorted(r["seconds"] for r in runs)
        rows[path] = {
            "seconds": seconds[len(seconds) // 2],
            "peak_bytes": max(r["peak_bytes"] for r in runs),
        }
    for row in rows.values():
        row["time_vs_plain"] = row["seconds"] / rows["plain"]["seconds"]
        row["peak_vs_plain"] = row["peak_bytes"] / rows["plain"]["peak_bytes"]
    return {"tokens": tokens, "vocab": VOCAB, "hidden": HIDDEN, "vocab_tile": CHUNK, "paths": rows}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="one measurement in a fresh process (used by run())")
    parser.add_argument("--worker", choices=list(PATHS), required=True)
    parser.add_argument("--tokens", type=int, default=4096)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("DGPO_TORCH_THREADS", torch.get_num_threads())))
    print(json.dumps(worker(args.worker, args.tokens)))
