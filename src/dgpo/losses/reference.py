"""Readable reference implementations: every objective as its paper writes it, one short function each.

Each function builds the surrogate the way its method's paper (or official code) does — ratios, ``torch.where``
per region, stop-gradients written as ``sg`` — and lets autograd produce the gradient. They share no formula with
the production objectives, which evaluate closed-form weights and assemble ``sg(v) − Â·sg(w)·(logp − sg(logp))``
(docs/design.md §2); the tests hold the two to the same value and gradient in float64 (1e-10). Read these to learn
an objective; use :func:`dgpo.losses.get_loss` to train (it is faster, checks its inputs and returns metrics).

    >>> from dgpo.losses.reference import REFERENCES
    >>> per_token_loss = REFERENCES["dgpo"](logp, old_logp, adv, mask, n=2)  # doctest: +SKIP

``REFERENCES[name](logp, old_logp, adv, mask, **params)`` takes the same arguments as ``get_loss(name, **params)``
(unset parameters take the objective's defaults from its config dataclass) and returns the (B, T) per-token loss,
0 on padding, with the value and gradient of ``get_loss`` wherever ``|logp − old_logp| ≤ 20`` (the library clamps
the log-ratio there, docs/design.md §2). Shapes: ``logp``, ``old_logp``, ``mask`` (B, T); ``adv`` (B,) or (B, T).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

import torch
from torch import Tensor

from dgpo.losses.registry import LOSSES


def sg(tensor: Tensor) -> Tensor:
    """Stop-gradient: the value of ``tensor``, no gradient."""
    return tensor.detach()


def pg(logp: Tensor, old_logp: Tensor, adv: Tensor) -> Tensor:
    """REINFORCE with an importance weight: ``−Â·r``, ``r = π_θ/π_old`` (Williams 1992)."""
    ratio = torch.exp(logp - old_logp)  # (B, T)
    return -adv * ratio


def grpo(logp: Tensor, old_logp: Tensor, adv: Tensor, *, eps_low, eps_high, dual_clip_c) -> Tensor:
    """PPO-clip (arXiv 1707.06347) as GRPO uses it: maximise ``min(r·Â, clip(r, 1−ε_low, 1+ε_high)·Â)``;
    dual-clip (arXiv 1912.09729) for Â < 0 maximises ``max(that, c·Â)``. DAPO is this with ε_high = 0.28."""
    ratio = torch.exp(logp - old_logp)  # (B, T)
    objective = torch.min(ratio * adv, torch.clamp(ratio, 1 - eps_low, 1 + eps_high) * adv)  # (B, T)
    if dual_clip_c is not None:
        objective = torch.where(adv < 0, torch.max(objective, dual_clip_c * adv), objective)  # (B, T)
    return -objective


def cispo(logp: Tensor, old_logp: Tensor, adv: Tensor, *, eps_low, eps_high) -> Tensor:
    """MiniMax-M1 (arXiv 2506.13585) eq. 4: ``J = sg(r̂)·Â·log π``, ``r̂ = clip(r, 1−ε_low, 1+ε_high)``
    (no lower bound when ε_low ≥ 1)."""
    ratio = torch.exp(logp - old_logp)  # (B, T)
    lower = 1 - eps_low if eps_low < 1 else 0.0
    clipped_ratio = torch.clamp(ratio, min=lower, max=1 + eps_high)  # (B, T)
    return -sg(clipped_ratio) * adv * logp


def gppo(
    logp: Tensor, old_logp: Tensor, adv: Tensor, *, eps_low, eps_high, dual_clip_c, beta1=1.0, beta2=1.0
) -> Tensor:
    """Klear-Reasoner's GPPO (arXiv 2508.07629): ``δ = β1·(1−ε_low)·r/sg(r)`` on LN, ``β2·(1+ε_high)·r/sg(r)`` on
    HP, ``r`` elsewhere; loss ``−Â·δ``, and the constant ``−c·Â`` on Â < 0 tokens with r > c (dual-clip).
    CE-GPPO (arXiv 2509.20712) is β1, β2 ≠ 1."""
    ratio = torch.exp(logp - old_logp)  # (B, T)
    gate = ratio / sg(ratio)  # (B, T): value 1, gradient of r
    ln = (adv < 0) & (ratio < 1 - eps_low)  # (B, T)
    hp = (adv > 0) & (ratio > 1 + eps_high)  # (B, T)
    delta = torch.where(ln, beta1 * (1 - eps_low) * gate, torch.where(hp, beta2 * (1 + eps_high) * gate, ratio))
    loss = -adv * delta  # (B, T)
    if dual_clip_c is not None:
        loss = torch.where((adv < 0) & (ratio > dual_clip_c), sg(-dual_clip_c * adv), loss)  # (B, T)
    return loss


def ce_gppo(logp: Tensor, old_logp: Tensor, adv: Tensor, *, eps_low, eps_high, beta1, beta2, dual_clip_c) -> Tensor:
    """CE-GPPO: :func:`gppo` with the LN and HP gradients scaled by β1 and β2."""
    scales = {"beta1": beta1, "beta2": beta2}
    return gppo(logp, old_logp, adv, eps_low=eps_low, eps_high=eps_high, dual_clip_c=dual_clip_c, **scales)


def aspo(logp: Tensor, old_logp: Tensor, adv: Tensor, *, eps_low, eps_high, dual_clip_c) -> Tensor:
    """ASPO (arXiv 2510.06062): good tokens (Â > 0) are weighted by the flipped ratio ``1/r``, bad ones by ``r``;
    LN and HP are hard-clipped (no gradient); LP's and HN's weights are soft-capped at c. Loss ``−Â·sg(w)·log π``."""
    ratio = torch.exp(logp - old_logp)  # (B, T)
    weight = torch.where(adv > 0, 1 / ratio, ratio)  # (B, T)
    lp = (adv > 0) & (ratio < 1 - eps_low)  # (B, T)
    hn = (adv < 0) & (ratio > 1 + eps_high)  # (B, T)
    weight = torch.where(lp | hn, torch.clamp(weight, max=dual_clip_c), weight)  # (B, T)
    ln = (adv < 0) & (ratio < 1 - eps_low)  # (B, T)
    hp = (adv > 0) & (ratio > 1 + eps_high)  # (B, T)
    weight = torch.where(ln | hp, torch.zeros_like(weight), weight)  # (B, T)
    return -adv * sg(weight) * logp


def gspo(logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, *, eps_low, eps_high) -> Tensor:
    """GSPO-token (arXiv 2507.18071, eq. 13): ``s_t = sg(s)·π_t/sg(π_t)`` with ``s = exp(mean_t log r_t)`` over the
    sequence's tokens; loss ``−min(s_t·Â, clip(s_t, 1−ε_low, 1+ε_high)·Â)``."""
    lengths = mask.sum(dim=1, keepdim=True).clamp(min=1)  # (B, 1)
    log_seq_ratio = ((logp - old_logp) * mask).sum(dim=1, keepdim=True) / lengths  # (B, 1)
    token_ratio = torch.exp(sg(log_seq_ratio) + logp - sg(logp))  # (B, T): value s, gradient of π_t
    return -torch.min(token_ratio * adv, torch.clamp(token_ratio, 1 - eps_low, 1 + eps_high) * adv)


def sapo(logp: Tensor, old_logp: Tensor, adv: Tensor, *, tau_pos, tau_neg) -> Tensor:
    """SAPO (arXiv 2511.20347): ``J = (4/τ)·sigmoid(τ·(r − 1))·Â``, τ = τ_pos for Â > 0, τ_neg for Â < 0."""
    ratio = torch.exp(logp - old_logp)  # (B, T)
    tau = torch.where(adv > 0, torch.full_like(ratio, tau_pos), torch.full_like(ratio, tau_neg))  # (B, T)
    return -(4 / tau) * torch.sigmoid(tau * (ratio - 1)) * adv


def dgpo(logp: Tensor, old_logp: Tensor, adv: Tensor, *, n, m, eps_low, eps_high) -> Tensor:
    """DGPO's official surrogate (arXiv 2603.14389), per region, loss ``−Â·surrogate``:

    * LN: ``exp(logp + n·sg(logp) − (n+1)·old_logp) / (1−ε_low)^n`` — gradient weight ``r^(n+1)/(1−ε_low)^n``;
    * HP: ``(1+ε_high)^(1/m) · exp(logp − sg(logp)/m − (1−1/m)·old_logp)`` — weight ``(1+ε_high)^(1/m)·r^(1−1/m)``;
    * elsewhere: ``r`` (plain PG, no dual-clip).
    """
    ratio = torch.exp(logp - old_logp)  # (B, T)
    ln = (adv < 0) & (sg(ratio) < 1 - eps_low)  # (B, T)
    hp = (adv > 0) & (sg(ratio) > 1 + eps_high)  # (B, T)
    ln_surrogate = torch.exp(logp + n * sg(logp) - (n + 1) * old_logp) / (1 - eps_low) ** n  # (B, T)
    hp_surrogate = (1 + eps_high) ** (1 / m) * torch.exp(logp - sg(logp) / m - (1 - 1 / m) * old_logp)  # (B, T)
    surrogate = torch.where(ln, ln_surrogate, torch.where(hp, hp_surrogate, ratio))  # (B, T)
    return -adv * surrogate


def as_reference(name: str, formula: Callable[..., Tensor], needs_mask: bool = False) -> Callable[..., Tensor]:
    """``formula(logp, old_logp, adv, [mask,] **params)`` with the library's calling convention: a mask, Â of shape
    (B,) or (B, T), and the defaults and range checks of objective ``name``'s config dataclass.

    ``formula`` sees padding replaced by a neutral token (r = 1, Â = 0) and a (B, T) Â; pass ``needs_mask`` when it
    also needs the (B, T) 0/1 mask (GSPO's sequence mean). Its loss is set to 0 on padding.
    """

    def reference(logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, **params) -> Tensor:
        params = asdict(LOSSES[name](**params))  # the objective's defaults and range checks
        active = mask.bool()  # (B, T)
        # Padding may hold anything (NaN, −Inf): replace it by a neutral token (r = 1, Â = 0), keep no gradient.
        logp = torch.where(active, logp, torch.zeros_like(logp))  # (B, T)
        old_logp = torch.where(active, old_logp, torch.zeros_like(old_logp))  # (B, T)
        adv = adv.unsqueeze(1) if adv.dim() == 1 else adv  # (B, 1) or (B, T)
        adv = torch.where(active, adv, torch.zeros_like(logp))  # (B, T)
        extra = (active.to(logp.dtype),) if needs_mask else ()
        loss = formula(logp, old_logp, adv, *extra, **params)  # (B, T)
        return torch.where(active, loss, torch.zeros_like(loss))

    reference.__name__ = reference.__qualname__ = name
    reference.__doc__ = formula.__doc__
    return reference


#: name -> ``reference(logp, old_logp, adv, mask, **params) -> per_token_loss``, same value and gradient as
#: ``get_loss(name, **params)``.
REFERENCES: dict[str, Callable[..., Tensor]] = {
    name: as_reference(name, formula, needs_mask=formula is gspo)
    for name, formula in {
        "pg": pg,
        "grpo": grpo,
        "dapo": grpo,
        "cispo": cispo,
        "gppo": gppo,
        "ce_gppo": ce_gppo,
        "aspo": aspo,
        "gspo": gspo,
        "sapo": sapo,
        "dgpo": dgpo,
    }.items()
}
