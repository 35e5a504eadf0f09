"""The table of docs/design.md §4, transcribed literally: defaults and the closed-form weight w of every objective.

A third path next to the library and the public autograd references (:mod:`dgpo.losses.reference`):
``∂loss/∂logp`` must equal ``−Â·w`` with ``w`` from here.
Token-level objectives only (GSPO's weight is its sequence ratio, checked in its own tests).
"""

from __future__ import annotations

import torch
from torch import Tensor

DEFAULTS = {
    "pg": {},
    "grpo": {"eps_low": 0.2, "eps_high": 0.2, "dual_clip_c": None},
    "dapo": {"eps_low": 0.2, "eps_high": 0.28, "dual_clip_c": None},
    "cispo": {"eps_low": 0.2, "eps_high": 0.2},
    "gppo": {"eps_low": 0.2, "eps_high": 0.28, "dual_clip_c": 10.0},
    "ce_gppo": {"eps_low": 0.2, "eps_high": 0.2, "beta1": 0.5, "beta2": 1.0, "dual_clip_c": 10.0},
    "aspo": {"eps_low": 0.2, "eps_high": 0.2, "dual_clip_c": 3.0},
    "gspo": {"eps_low": 3e-4, "eps_high": 4e-4},
    "sapo": {"tau_pos": 1.0, "tau_neg": 1.05},
    "dgpo": {"n": 1.0, "m": 2.0, "eps_low": 0.2, "eps_high": 0.2},
}


def table_weight(name: str, r: Tensor, adv: Tensor, **params) -> Tensor:
    p = {**DEFAULTS[name], **params}
    el, eh = p.get("eps_low", 0.2), p.get("eps_high", 0.2)
    c = p.get("dual_clip_c")
    neg = adv < 0
    ln = (r < 1 - el) & neg
    hp = (r > 1 + eh) & ~neg
    lp = (r < 1 - el) & ~neg
    hn = (r > 1 + eh) & neg
    zero = torch.zeros_like(r)
    if name == "pg":
        return r.clone()
    if name in ("grpo", "dapo"):
        w = torch.where(ln | hp, zero, r)
        return w if c is None else torch.where(neg & (r > c), zero, w)
    if name == "cispo":
        return torch.clamp(r, min=1 - el if el < 1 else 0.0, max=1 + eh)
    if name in ("gppo", "ce_gppo"):
        b1, b2 = p.get("beta1", 1.0), p.get("beta2", 1.0)
        w = torch.where(ln, b1 * (1 - el) * torch.ones_like(r), torch.where(hp, b2 * (1 + eh) * torch.ones_like(r), r))
        return w if c is None else torch.where(neg & (r > c), zero, w)
    if name == "aspo":
        w = torch.where(neg, r, 1 / r)
        w = torch.where(lp, torch.minimum(1 / r, torch.full_like(r, c)), w)
        w = torch.where(hn, torch.minimum(r, torch.full_like(r, c)), w)
        return torch.where(ln | hp, zero, w)
    if name == "sapo":
        tau = torch.where(adv > 0, torch.full_like(r, p["tau_pos"]), torch.full_like(r, p["tau_neg"]))
        sigma = torch.sigmoid(tau * (r - 1))
        return 4 * sigma * (1 - sigma) * r
    if name == "dgpo":
        n, m = p["n"], p["m"]
        return torch.where(ln, r ** (n + 1) / (1 - el) ** n, torch.where(hp, (1 + eh) ** (1 / m) * r ** (1 - 1 / m), r))
    raise KeyError(name)
