"""Independent reference implementations, each written from its method's own published formula.

They share no code with ``dgpo.losses``: every one builds the surrogate the way its paper (or the official code)
writes it, with ratios and stop-gradients, and lets autograd produce the gradient. The library instead evaluates
closed-form weights and assembles ``sg(v) − Â·sg(w)·(logp − sg(logp))``; agreement of the two in value and
gradient (float64, 1e-10) is the contract of docs/design.md §2.

Each function takes (B, T) ``logp`` (requires grad), ``old_logp``, ``adv`` (B, T) and returns the (B, T)
per-token loss, all tokens active.
"""

from __future__ import annotations

import torch
from torch import Tensor

sg = torch.Tensor.detach


def ratio(logp: Tensor, old_logp: Tensor) -> Tensor:
    return torch.exp(logp - old_logp)


def pg(logp, old_logp, adv) -> Tensor:
    # REINFORCE with importance weight: −Â·π/π_old.
    return -adv * ratio(logp, old_logp)


def ppo_clip(logp, old_logp, adv, eps_low=0.2, eps_high=0.2, dual_clip_c=None) -> Tensor:
    # PPO (Schulman et al. 2017): maximise min(r·Â, clip(r)·Â); dual-clip (Ye et al. 2020): for Â < 0,
    # maximise max(that, c·Â).
    r = ratio(logp, old_logp)
    objective = torch.min(r * adv, torch.clamp(r, 1 - eps_low, 1 + eps_high) * adv)
    if dual_clip_c is not None:
        objective = torch.where(adv < 0, torch.max(objective, dual_clip_c * adv), objective)
    return -objective


def cispo(logp, old_logp, adv, eps_low=0.2, eps_high=0.2) -> Tensor:
    # MiniMax-M1 eq. (4): J = sg(r̂)·Â·log π with r̂ = clip(r, 1−ε_low, 1+ε_high) (no lower bound if ε_low ≥ 1).
    r = ratio(logp, old_logp)
    low = 1 - eps_low if eps_low < 1 else 0.0
    clipped = torch.clamp(r, min=low, max=1 + eps_high)
    return -sg(clipped) * adv * logp


def gppo(logp, old_logp, adv, eps_low=0.2, eps_high=0.28, dual_clip_c=10.0, beta1=1.0, beta2=1.0) -> Tensor:
    # Klear-Reasoner eq. (GPPO): δ = β1·(1−ε_l)·r/sg(r) if Â<0 and r<1−ε_l; β2·(1+ε_h)·r/sg(r) if Â>0 and r>1+ε_h;
    # else r. Loss −Â·δ; dual-clip −c·Â (a constant) where Â<0 and r>c. CE-GPPO is β1, β2 ≠ 1.
    r = ratio(logp, old_logp)
    gate = r / sg(r)
    delta = torch.where(
        (adv < 0) & (r < 1 - eps_low),
        beta1 * (1 - eps_low) * gate,
        torch.where((adv > 0) & (r > 1 + eps_high), beta2 * (1 + eps_high) * gate, r),
    )
    loss = -adv * delta
    if dual_clip_c is not None:
        loss = torch.where((adv < 0) & (r > dual_clip_c), sg(-dual_clip_c * adv), loss)
    return loss


def aspo(logp, old_logp, adv, eps_low=0.2, eps_high=0.2, dual_clip_c=3.0) -> Tensor:
    # ASPO: positive tokens use the flipped ratio π_old/π in token form sg(π_old/π)·π/sg(π); LN/HP are hard-clipped
    # (no gradient); LP's flipped weight and HN's ratio are soft-capped at c. Only the gradient is compared.
    r = ratio(logp, old_logp)
    token = torch.exp(logp - sg(logp))  # value 1, gradient 1 w.r.t. logp
    flipped = sg(1 / r)
    weight = torch.where(adv > 0, flipped, sg(r))
    lp = (adv > 0) & (r < 1 - eps_low)
    hn = (adv < 0) & (r > 1 + eps_high)
    weight = torch.where(lp | hn, torch.clamp(weight, max=dual_clip_c), weight)
    dead = ((adv < 0) & (r < 1 - eps_low)) | ((adv > 0) & (r > 1 + eps_high))
    return torch.where(dead, torch.zeros_like(r), -adv * weight * token)


def gspo(logp, old_logp, adv, eps_low=3e-4, eps_high=4e-4) -> Tensor:
    # GSPO-token (Zheng et al. 2025, eq. 13): s_i,t = sg(s_i)·π_t/sg(π_t), s_i = exp(mean_t log r_t),
    # loss −min(s_i,t·Â, clip(s_i,t)·Â).
    log_s = (logp - old_logp).mean(dim=1, keepdim=True)
    s_token = torch.exp(sg(log_s) + logp - sg(logp))
    objective = torch.min(s_token * adv, torch.clamp(s_token, 1 - eps_low, 1 + eps_high) * adv)
    return -objective


def sapo(logp, old_logp, adv, tau_pos=1.0, tau_neg=1.05) -> Tensor:
    # SAPO: J = f(r)·Â with f(r) = (4/τ)·sigmoid(τ·(r − 1)), τ by the sign of Â.
    r = ratio(logp, old_logp)
    tau = torch.where(adv > 0, torch.full_like(r, tau_pos), torch.full_like(r, tau_neg))
    return -(4 / tau) * torch.sigmoid(tau * (r - 1)) * adv


def dgpo_official(logp, old_logp, adv, n=1.0, m=2.0, eps_low=0.2, eps_high=0.2) -> Tensor:
    # DGPO's official surrogate, per region:
    #   LN: exp(logp + n·sg(logp) − (n+1)·old) / (1−ε_l)^n
    #   HP: (1+ε_h)^(1/m) · exp(logp − sg(logp)/m − (1−1/m)·old)
    #   elsewhere: r (plain PG, no dual-clip); loss −Â·surrogate.
    r = sg(ratio(logp, old_logp))
    ln = (adv < 0) & (r < 1 - eps_low)
    hp = (adv > 0) & (r > 1 + eps_high)
    ln_surrogate = torch.exp(logp + n * sg(logp) - (n + 1) * old_logp) / (1 - eps_low) ** n
    hp_surrogate = (1 + eps_high) ** (1 / m) * torch.exp(logp - sg(logp) / m - (1 - 1 / m) * old_logp)
    surrogate = torch.where(ln, ln_surrogate, torch.where(hp, hp_surrogate, ratio(logp, old_logp)))
    return -adv * surrogate


REFERENCES = {
    "pg": pg,
    "grpo": ppo_clip,
    "dapo": lambda lp, old, a, **kw: ppo_clip(lp, old, a, **{"eps_high": 0.28, **kw}),
    "cispo": cispo,
    "gppo": gppo,
    "ce_gppo": lambda lp, old, a, **kw: gppo(lp, old, a, **{"eps_high": 0.2, "beta1": 0.5, "beta2": 1.0, **kw}),
    "aspo": aspo,
    "gspo": gspo,
    "sapo": sapo,
    "dgpo": dgpo_official,
}
