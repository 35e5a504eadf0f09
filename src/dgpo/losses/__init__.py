"""The clipping objectives of modern RLVR, exact in value and gradient (docs/design.md §2, §4).

    >>> from dgpo.losses import get_loss, LOSSES
    >>> loss_fn = get_loss("dgpo", n=2, m=2, eps_low=0.2, eps_high=0.2)
    >>> per_token_loss, metrics = loss_fn(logp, old_logp, adv, mask)  # doctest: +SKIP

Every objective satisfies ``∂per_token_loss/∂logp = −adv·w`` with ``w`` its log-prob-gradient weight.
Imports torch only.
"""

# Importing the family modules registers their objectives; this order (the paper's) is the order of LOSSES.
# isort: off
from dgpo.losses import ppo, soft, aspo, gspo, sapo, dgpo  # noqa: F401  (imported for registration)

# isort: on
from dgpo.losses.aspo import ASPOLossConfig
from dgpo.losses.config import LossConfig
from dgpo.losses.dgpo import DGPOLossConfig
from dgpo.losses.gspo import GSPOLossConfig
from dgpo.losses.inputs import LOG_RATIO_CLAMP
from dgpo.losses.ppo import DAPOLossConfig, GRPOLossConfig, PGLossConfig
from dgpo.losses.registry import LOSS_FUNCTIONS, LOSSES, Objective, get_loss, register
from dgpo.losses.sapo import SAPOLossConfig
from dgpo.losses.soft import CEGPPOLossConfig, CISPOLossConfig, GPPOLossConfig

__all__ = [
    "LOG_RATIO_CLAMP",
    "LOSSES",
    "LOSS_FUNCTIONS",
    "ASPOLossConfig",
    "CEGPPOLossConfig",
    "CISPOLossConfig",
    "DAPOLossConfig",
    "DGPOLossConfig",
    "GPPOLossConfig",
    "GRPOLossConfig",
    "GSPOLossConfig",
    "LossConfig",
    "Objective",
    "PGLossConfig",
    "SAPOLossConfig",
    "get_loss",
    "register",
]
