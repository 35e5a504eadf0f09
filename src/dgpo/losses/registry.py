"""The objective registry: a plain dict from name to config dataclass, and :func:`get_loss`.

>>> from dgpo.losses import get_loss
>>> loss_fn = get_loss("dgpo", n=2, m=2)
>>> per_token_loss, terms = loss_fn(logp, old_logp, adv, mask)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from torch import Tensor

from dgpo.losses.config import LossConfig, parameter_names

if TYPE_CHECKING:
    from dgpo.losses.terms import ObjectiveTerms


class LossFunction(Protocol):
    def __call__(
        self, logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, cfg: LossConfig
    ) -> tuple[Tensor, ObjectiveTerms]: ...


#: name -> config dataclass of that objective (its defaults and valid parameters).
LOSSES: dict[str, type[LossConfig]] = {}
#: name -> pure loss function ``fn(logp, old_logp, adv, mask, cfg) -> (per_token_loss, terms)``.
LOSS_FUNCTIONS: dict[str, LossFunction] = {}


def register(name: str, config_cls: type[LossConfig]) -> Callable[[LossFunction], LossFunction]:
    """Decorator registering ``fn`` under ``name`` with its config dataclass; a duplicate name raises."""

    def decorator(fn: LossFunction) -> LossFunction:
        if name in LOSSES:
            raise ValueError(f"objective {name!r} is already registered")
        LOSSES[name] = config_cls
        LOSS_FUNCTIONS[name] = fn
        return fn

    return decorator


@dataclass(frozen=True)
class Objective:
    """A configured objective: call it as ``objective(logp, old_logp, adv, mask)``."""

    name: str
    config: LossConfig
    fn: LossFunction

    def __call__(self, logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor) -> tuple[Tensor, ObjectiveTerms]:
        """``(per_token_loss, terms)``: the (B, T) loss and its :class:`~dgpo.losses.terms.ObjectiveTerms`, which
        read as the metric dict (computed on first read)."""
        return self.fn(logp, old_logp, adv, mask, self.config)


def config_class(name: str) -> type[LossConfig]:
    """The config dataclass of objective ``name``; raises ValueError listing the valid names when unknown."""
    if name not in LOSSES:
        raise ValueError(f"unknown objective {name!r}; valid objectives: {', '.join(LOSSES)}")
    return LOSSES[name]


def get_loss(name: str, **params: float | None) -> Objective:
    """Return the objective ``name`` configured with ``params`` (unset parameters keep their defaults).

    Raises:
        ValueError: unknown name (lists the valid ones), unknown parameter (lists the objective's parameters),
            or a value outside its range (names the field and the range).
    """
    config_cls = config_class(name)
    valid = parameter_names(config_cls)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(unknown)} for objective {name!r}; "
            f"valid parameters: {', '.join(valid) or '(none)'}"
        )
    return Objective(name=name, config=config_cls(**params), fn=LOSS_FUNCTIONS[name])
