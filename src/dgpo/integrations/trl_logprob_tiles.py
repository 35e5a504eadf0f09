"""The token tile of TRL's chunked log-prob kernel, set per training step.

TRL 1.16 computes log π and the entropy from hidden states in (token tile × vocabulary tile) blocks
(``trl.kernels.ChunkedLogProbFunction``, recomputing the logits in backward), with a 4096-token tile that is a
module constant. Without Triton (CPU) its torch fallback allocates about a dozen fresh float32 temporaries of one
tile each — 4096 × 32,768 × 4 B = 512 MiB apiece. Measured at V = 151,936, hidden 896, T = 4096 on the 2-core
development machine (docs/benchmarks.md): the 4096 tile costs 1.60–1.70× the time of the plain full-logits path
and 0.46× its peak memory; a 512-token tile costs 0.99–1.13× and 0.11–0.12×. Triton devices keep TRL's tile
(their kernel does not allocate per tile). Both forward and backward read the constant, so it is set around the
whole training step. Part of the TRL integration (it sets TRL's constant); TRL is imported only when called.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

#: The token tile used where TRL would run its torch fallback (no Triton).
CPU_TOKEN_TILE = 512


def default_token_tile(device: torch.device) -> int | None:
    """512 on devices where TRL runs its torch fallback; None (TRL's own 4096) where it runs Triton."""
    from trl.kernels.chunked_logprob import _use_triton

    return None if _use_triton(device) else CPU_TOKEN_TILE


@contextmanager
def token_tile(size: int | None) -> Iterator[None]:
    """Use ``size`` tokens per tile in TRL's chunked log-prob kernel inside the block (None: leave TRL's)."""
    import trl.kernels.chunked_logprob as kernel

    if size is None:
        yield
        return
    previous = kernel.TOKEN_CHUNK_SIZE
    kernel.TOKEN_CHUNK_SIZE = size
    try:
        yield
    finally:
        kernel.TOKEN_CHUNK_SIZE = previous
