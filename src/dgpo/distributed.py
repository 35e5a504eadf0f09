"""Rank helpers for ``dgpo train`` under torchrun / ``accelerate launch``: rank 0 writes, the other ranks wait and read.

Every helper is a no-op in a single process (no ``WORLD_SIZE``, or ``WORLD_SIZE=1``), so ``dgpo train`` runs the
same code with and without a launcher. Under a launcher, everything that touches the run directory or runs a
side computation (the warm start, the held-out evaluation) goes through :func:`on_main`: rank 0 does it and every
rank receives its result — or its error, so a failed start-up check ends every rank instead of leaving the others
waiting at a collective until the timeout.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")
#: How long a rank waits at a collective for the others (rank 0's warm start and held-out evaluation included);
#: the same as transformers' default ``ddp_timeout``.
TIMEOUT = timedelta(minutes=30)
#: Errors re-raised on every rank with their own type: the ones the CLI turns into a one-line ``error:``.
_USER_ERRORS = {
    error.__name__: error for error in (ValueError, FileNotFoundError, PermissionError, IsADirectoryError, OSError)
}


def world_size() -> int:
    """Processes in the run: the process group's size once it exists, else the launcher's ``WORLD_SIZE``."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's global rank (0 without a launcher)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """Whether this process is rank 0: the one that writes files and prints."""
    return rank() == 0


def init_process_group() -> None:
    """Join the launcher's process group now rather than when TRL builds its Accelerator.

    Rank 0's warm start and held-out evaluation run before the trainer exists, and the other ranks must wait for
    them. accelerate's ``PartialState`` reads the torchrun environment and picks gloo on CPU, nccl on GPU — the
    same choice ``TrainingArguments`` makes later (with ``use_cpu`` = no CUDA, as ``dgpo train`` sets it), which
    then reuses the group.
    """
    if world_size() > 1 and not dist.is_initialized():
        from accelerate import PartialState

        PartialState(cpu=not torch.cuda.is_available(), timeout=TIMEOUT)


def close() -> None:
    """Leave the process group together at the end of a run.

    Without it, each process tears gloo down at interpreter exit on its own, and a rank whose peer has already gone
    can abort there ("terminate called without an active exception", SIGABRT) after finishing its work.
    """
    if dist.is_available() and dist.is_initialized():
        with contextlib.suppress(RuntimeError):  # a peer already gone (it crashed): destroy our side all the same
            dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    """Wait until every rank gets here."""
    if world_size() > 1:
        dist.barrier()


def broadcast_object(value: T, src: int = 0) -> T:
    """Rank ``src``'s ``value`` (any picklable object) on every rank; the others pass a placeholder."""
    if world_size() == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def on_main(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn`` on rank 0 only; every rank returns its result, and every rank raises if it raised.

    The other ranks wait here. An error is sent as its type name and message (exceptions need not pickle) and
    re-raised with the same type for ``ValueError``/``FileNotFoundError`` — the CLI's one-line errors — and as a
    ``RuntimeError`` naming it otherwise; rank 0 re-raises the original, traceback included.
    """
    if world_size() == 1:
        return fn(*args, **kwargs)
    outcome: tuple[str, Any] = ("ok", None)
    error: BaseException | None = None
    if is_main():
        try:
            outcome = ("ok", fn(*args, **kwargs))
        except Exception as err:  # every rank must hear about it, whatever it is
            error = err
            outcome = ("error", (type(err).__name__, str(err)))
    status, payload = broadcast_object(outcome)
    if error is not None:
        raise error
    if status == "error":
        name, message = payload
        raise _USER_ERRORS[name](message) if name in _USER_ERRORS else RuntimeError(f"rank 0 failed: {name}: {message}")
    return payload


def parameter_fingerprint(model: torch.nn.Module) -> list[tuple[str, str, str]]:
    """(name, float64 sum, float64 L2 norm) of every parameter, the floats as exact hex strings (NaN compares equal
    to NaN): one reduction per tensor, a few hundred numbers to exchange, and any drift between ranks shows."""
    rows = []
    with torch.no_grad():
        for name, param in model.named_parameters():
            total = param.detach().sum(dtype=torch.float64)
            norm = torch.linalg.vector_norm(param.detach(), dtype=torch.float64)
            rows.append((name, total.item().hex(), norm.item().hex()))
    return rows


def check_same_parameters(model: torch.nn.Module) -> None:
    """Raise unless every rank holds bit-identical parameter fingerprints (data parallelism keeps replicas equal;
    a rank that skipped a step or drifted would save a model nobody trained). A no-op in a single process."""
    if world_size() == 1:
        return
    mine = parameter_fingerprint(model)
    everyone: list = [None] * world_size()
    dist.all_gather_object(everyone, mine)
    for other_rank, theirs in enumerate(everyone):
        if theirs == mine:
            continue
        differing = next((a[0] for a, b in zip(mine, theirs, strict=False) if a != b), "the parameter list")
        raise RuntimeError(
            f"final parameters differ between rank {rank()} and rank {other_rank} (first: {differing}); "
            "the processes did not train the same model"
        )
