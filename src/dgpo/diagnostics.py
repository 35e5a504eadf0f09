"""Weight diagnostics: the ratio-to-PG weight ``w/r`` of each objective, read off its real gradient.

``w/r`` compares every objective with plain PG (``w = r``): 1 means "as PG", 0 "no gradient", and values
growing as r → 0 on LN are the soft-clipping divergence DGPO removes (arXiv 2603.14389, §3).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from dgpo.losses import get_loss

#: Ratios shown by ``dgpo weights``: far below 1−ε on LN (Â < 0) and far above 1+ε on HP (Â > 0).
DEFAULT_LN_RATIOS = (0.7, 0.5, 0.1, 0.01, 1e-4)
DEFAULT_HP_RATIOS = (1.5, 2.0, 5.0, 10.0)


def weight_vs_pg(objective: str, ratios: Sequence[float], advantage: float, **params: float) -> list[float]:
    """``w/r`` of ``objective`` at each ratio for one advantage sign, from autograd of the actual loss.

    Each ratio is its own one-token sequence (so GSPO's sequence ratio equals it), with ``old_logp = 0``.
    """
    if advantage == 0:
        raise ValueError("advantage must be non-zero: with Â = 0 every gradient is 0 and w is undefined")
    if any(not r > 0 for r in ratios):
        raise ValueError(f"ratios must be > 0, got {list(ratios)}")
    ratio = torch.tensor(list(ratios), dtype=torch.float64).unsqueeze(1)
    logp = ratio.log().requires_grad_(True)
    adv = torch.full((len(ratios),), float(advantage), dtype=torch.float64)
    per_token_loss, _ = get_loss(objective, **params)(logp, torch.zeros_like(ratio), adv, torch.ones_like(ratio))
    (grad,) = torch.autograd.grad(per_token_loss.sum(), logp)
    # ∂loss/∂logp = −Â·w  ⇒  w = −grad/Â.
    weight = -grad / advantage
    return (weight / ratio).squeeze(1).tolist()
