"""Group-relative advantage estimators (docs/design.md §5). Imports torch only.

``rewards`` is (B,) with the G samples of each prompt in consecutive rows; the result Â is (B,).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from dgpo.ranges import NonFiniteError

#: Added to the standard deviation so a group with equal rewards gets Â = 0, not NaN (as TRL and verl do).
STD_EPS = 1e-6


def _groups(rewards: Tensor, group_size: int, min_group: int, method: str) -> Tensor:
    if not isinstance(rewards, Tensor) or rewards.dim() != 1:
        shape = tuple(rewards.shape) if isinstance(rewards, Tensor) else type(rewards).__name__
        raise ValueError(f"rewards must be a 1-D tensor of shape (B,), got {shape}")
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < min_group:
        raise ValueError(f"group_size must be an integer >= {min_group} for advantage {method!r}, got {group_size!r}")
    if rewards.numel() % group_size:
        raise ValueError(
            f"batch size {rewards.numel()} is not divisible by group_size {group_size}; "
            "each prompt needs exactly group_size consecutive samples"
        )
    if not bool(torch.isfinite(rewards).all()):
        raise NonFiniteError("rewards hold NaN or Inf; expected finite values")
    dtype = rewards.dtype if rewards.is_floating_point() else torch.float32
    return rewards.to(dtype).view(-1, group_size)


def grpo_advantages(rewards: Tensor, group_size: int) -> Tensor:
    """GRPO: ``Â = (R − mean_g) / (std_g + 1e-6)`` with the unbiased group std (Shao et al. 2024, arXiv 2402.03300)."""
    groups = _groups(rewards, group_size, 2, "grpo")
    centred = groups - groups.mean(dim=1, keepdim=True)
    return (centred / (groups.std(dim=1, unbiased=True, keepdim=True) + STD_EPS)).flatten()


def dr_grpo_advantages(rewards: Tensor, group_size: int) -> Tensor:
    """Dr. GRPO: ``Â = R − mean_g``, no std normalisation (Liu et al. 2025, arXiv 2503.20783)."""
    groups = _groups(rewards, group_size, 1, "dr_grpo")
    return (groups - groups.mean(dim=1, keepdim=True)).flatten()


def rloo_advantages(rewards: Tensor, group_size: int) -> Tensor:
    """RLOO: ``Â = G/(G−1)·(R − mean_g)``, i.e. R minus the mean of the *other* samples (Ahmadian et al. 2024)."""
    groups = _groups(rewards, group_size, 2, "rloo")
    return (group_size / (group_size - 1) * (groups - groups.mean(dim=1, keepdim=True))).flatten()


def reinforce_pp_advantages(rewards: Tensor, group_size: int) -> Tensor:
    """REINFORCE++ (group baseline): ``R − mean_g``, then whitened over the whole batch of sequences,
    ``(x − mean_B)/(std_B + 1e-6)`` (Hu 2025, arXiv 2501.03262). A batch of one sequence is only centred."""
    centred = dr_grpo_advantages(rewards, group_size)
    centred = centred - centred.mean()
    if centred.numel() < 2:
        return centred
    return centred / (centred.std(unbiased=True) + STD_EPS)


ADVANTAGES: dict[str, Callable[[Tensor, int], Tensor]] = {
    "grpo": grpo_advantages,
    "dr_grpo": dr_grpo_advantages,
    "rloo": rloo_advantages,
    "reinforce_pp": reinforce_pp_advantages,
}


def check_advantage(method: str) -> None:
    """Raise ``ValueError`` naming an unknown advantage and the valid ones."""
    if method not in ADVANTAGES:
        raise ValueError(f"unknown advantage {method!r}; valid advantages: {', '.join(ADVANTAGES)}")


def compute_advantages(rewards: Tensor, group_size: int, method: str = "grpo") -> Tensor:
    """Advantages by name: one of ``grpo``, ``dr_grpo``, ``rloo``, ``reinforce_pp``."""
    check_advantage(method)
    return ADVANTAGES[method](rewards, group_size)
