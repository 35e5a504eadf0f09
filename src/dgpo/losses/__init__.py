"""The clipping objectives of modern RLVR, exact in value and gradient (docs/design.md §2, §4).

    >>> from dgpo.losses import get_loss, LOSSES
    >>> loss_fn = get_loss("dgpo", n=2, m=2, eps_low=0.2, eps_high=0.2)
    >>> per_token_loss, terms = loss_fn(logp, old_logp, adv, mask)  # doctest: +SKIP
    >>> terms["region/ln"]  # the metrics, computed on first read  # doctest: +SKIP

Every objective satisfies ``∂per_token_loss/∂logp = −adv·w`` with ``w`` its log-prob-gradient weight.
Imports torch only.

Layout: ``core`` (inputs, regions, the exact surrogate), ``terms`` (the metrics on request), ``config`` and
``registry`` (parameters and names), ``reference`` (each paper's formula with autograd); every other module is one
family of objectives and registers them on import.
"""

import importlib
import pkgutil

# Importing the family modules registers their objectives; this order (the paper's) is the order of LOSSES.
# isort: off
from dgpo.losses import ppo, soft, aspo, gspo, sapo, dgpo  # noqa: F401  (imported for registration)

# isort: on

from dgpo.losses.aspo import ASPOLossConfig
from dgpo.losses.config import LossConfig
from dgpo.losses.core import LOG_RATIO_CLAMP
from dgpo.losses.dgpo import DGPOLossConfig
from dgpo.losses.gspo import GSPOLossConfig
from dgpo.losses.ppo import DAPOLossConfig, GRPOLossConfig, PGLossConfig
from dgpo.losses.registry import LOSS_FUNCTIONS, LOSSES, Objective, config_class, get_loss, register
from dgpo.losses.sapo import SAPOLossConfig
from dgpo.losses.soft import CEGPPOLossConfig, CISPOLossConfig, GPPOLossConfig
from dgpo.losses.terms import ObjectiveTerms

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
    "ObjectiveTerms",
    "PGLossConfig",
    "SAPOLossConfig",
    "config_class",
    "get_loss",
    "register",
]


#: Modules of this package that define no objective.
NOT_OBJECTIVE_MODULES = frozenset({"config", "core", "reference", "registry", "terms"})


def import_objective_modules() -> None:
    """Import every objective module of this package (each registers its objectives; importing twice is a no-op).

    Any module here beyond the paper's six registers too, after them: a new objective is a new file in this
    package and no edit of this one (docs/design.md, "Add an objective").
    """
    for module in pkgutil.iter_modules(__path__):
        if module.name not in NOT_OBJECTIVE_MODULES:
            importlib.import_module(f"{__name__}.{module.name}")


import_objective_modules()
