"""Objective cost: forward+backward time and autograd-saved memory of every objective, as ratios against two
baselines measured in the same run:

* ``trl_grpo``: TRL 1.16's GRPO per-token formula (exp, clamp, min; token-mean; no metrics);
* ``dgpo_ref``: the DGPO official surrogate as :mod:`dgpo.losses.reference` writes it (per-region ``exp`` of mixed
  detached log-probs, as the official code), without the padding handling of ``REFERENCES`` (the official code has
  none).

Every dgpo objective is timed with its input checks, aggregated with token-mean, twice: the call alone (``dgpo``;
the bar, since the metrics are computed on request) and with its metric dict computed (``dgpo+metrics``, what a
trainer pays on a micro-batch it logs). Timing rounds
alternate between all steps (the median over rounds is reported), so drift on the machine hits every step alike.
Memory is counted two ways: the bytes autograd saves for backward (``saved_tensors_hooks``) and the peak of live
tensor bytes created during forward + backward (a dispatch mode that sees every aten op's outputs and notices
freed storages).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict

import torch
from torch import Tensor
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from dgpo.aggregation import aggregate
from dgpo.losses import LOSSES, DGPOLossConfig, get_loss, reference


def trl_grpo(logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, eps: float = 0.2) -> Tensor:
    coef_1 = torch.exp(logp - old_logp)
    coef_2 = torch.clamp(coef_1, 1 - eps, 1 + eps)
    per_token = -torch.min(coef_1 * adv.unsqueeze(1), coef_2 * adv.unsqueeze(1))
    return (per_token * mask).sum() / mask.sum().clamp(min=1.0)


def dgpo_ref(logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor) -> Tensor:
    """The official DGPO surrogate, :func:`dgpo.losses.reference.dgpo` (the readable reference), at the defaults."""
    params = asdict(DGPOLossConfig())
    per_token = reference.dgpo(logp, old_logp, adv.unsqueeze(1), **params)
    return (per_token * mask).sum() / mask.sum().clamp(min=1.0)


def objective_step(name: str, with_metrics: bool = False) -> Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]:
    """One objective call, token-mean and (returned for ``backward``); ``with_metrics`` also computes its metric dict,
    as a trainer does on every micro-batch it logs (the metrics are computed on request since issue 23)."""
    fn = get_loss(name)

    def step(logp, old_logp, adv, mask):
        per_token, terms = fn(logp, old_logp, adv, mask)
        if with_metrics:
            terms.metrics()
        return aggregate(per_token, mask, "token-mean")

    return step


def make_batch(batch: int, tokens: int, dtype: torch.dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(batch, tokens, generator=g) * 4
    logp = (old + 0.3 * torch.randn(batch, tokens, generator=g)).clamp(max=0.0)
    adv = torch.randn(batch, generator=g)
    mask = (torch.rand(batch, tokens, generator=g) > 0.1).float()
    return logp.to(dtype), old.to(dtype), adv.to(dtype), mask.to(dtype)


def saved_bytes(step, logp, old, adv, mask) -> int:
    """Bytes of the distinct tensors autograd saves for backward (counted with saved_tensors_hooks)."""
    seen: dict[tuple[int, int], int] = {}

    def pack(t: Tensor):
        seen[(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())] = t.untyped_storage().nbytes()
        return t

    leaf = logp.detach().requires_grad_(True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step(leaf, old, adv, mask)
    return sum(seen.values())


class LiveBytes(TorchDispatchMode):
    """Peak bytes of the tensor storages created while active and still alive, checked after every aten op."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for key in [key for key, (ref, _) in self.live.items() if ref.expired()]:
            del self.live[key]
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, Tensor):
                storage = tensor.untyped_storage()
                if storage.nbytes() and storage.data_ptr() not in self.live:
                    self.live[storage.data_ptr()] = (StorageWeakRef(storage), storage.nbytes())
        self.peak = max(self.peak, sum(size for _, size in self.live.values()))
        return out


def peak_bytes(step, logp, old, adv, mask) -> int:
    leaf = logp.detach().requires_grad_(True)
    with LiveBytes() as tracker:
        step(leaf, old, adv, mask).backward()
    return tracker.peak


def time_steps(steps: dict, logp, old, adv, mask, repeats: int) -> dict[str, float]:
    """Median seconds of one forward + backward per step, over ``repeats`` rounds that alternate the steps."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(repeats + 2):
        for name, step in steps.items():
            leaf = logp.detach().requires_grad_(True)
            start = time.perf_counter()
            step(leaf, old, adv, mask).backward()
            if i >= 2:  # two warm-up rounds
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def run(batch: int, tokens: int, dtype: torch.dtype, repeats: int) -> list[dict]:
    data = make_batch(batch, tokens, dtype)
    steps = {
        "trl_grpo": trl_grpo,
        "dgpo_ref": dgpo_ref,
        **{name: objective_step(name) for name in LOSSES},
        **{f"{name}+metrics": objective_step(name, with_metrics=True) for name in LOSSES},
    }
    seconds = time_steps(steps, *data, repeats)
    rows = [
        {
            "name": name,
            "seconds": seconds[name],
            "saved_bytes": saved_bytes(step, *data),
            "peak_bytes": peak_bytes(step, *data),
        }
        for name, step in steps.items()
    ]
    base, ref = rows[0], rows[1]
    for row in rows:
        row["vs_trl_grpo"] = row["seconds"] / base["seconds"]
        row["vs_dgpo_ref"] = row["seconds"] / ref["seconds"]
        row["saved_vs_trl_grpo"] = row["saved_bytes"] / base["saved_bytes"]
        row["peak_vs_trl_grpo"] = row["peak_bytes"] / base["peak_bytes"]
    return rows
