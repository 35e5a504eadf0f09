"""How a user's mistake ends in ``dgpo``: exactly one ``error:`` line naming the option, key or file, exit code 2,
no traceback.

A bad option value, a missing or malformed file, a model that cannot be found: each command catches
:data:`USER_ERRORS` and calls :func:`fail`; ``dgpo --debug ...`` or ``DGPO_DEBUG=1`` prints the traceback above
that line. Click's own usage errors (a missing option, ``--k abc``) take the same one-line form
(:class:`OneLineErrors`). No value is checked here: the config dataclasses check their own, and :func:`build` only
adds the option's name to their message, in click's form ``Invalid value for '--k': k must be >= 1, got 0``.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from dgpo.ranges import SettingError

#: Errors that are the user's to fix (bad values, missing or unreadable files): one line, exit code 2.
USER_ERRORS = (ValueError, OSError)
#: Click's exception classes wherever this typer keeps them (typer >= 0.26 vendors click as ``typer._click``).
_click = sys.modules[typer.BadParameter.__module__]
_NO_ARGS_IS_HELP = getattr(_click, "NoArgsIsHelpError", ())  # click >= 8.2: `dgpo` alone, answered with the help
_debug = False
T = TypeVar("T")


def set_debug(debug: bool) -> None:
    """``dgpo --debug``: tracebacks above the error line from now on."""
    global _debug
    _debug = debug


def debugging() -> bool:
    """``--debug`` was given or ``DGPO_DEBUG`` is set (the way under torchrun, whose ranks start their own CLI)."""
    return _debug or os.environ.get("DGPO_DEBUG", "").lower() in ("1", "true", "yes", "on")


class OneLineErrors(TyperGroup):
    """Click's usage errors as dgpo's one ``error:`` line (exit code 2) instead of click's usage box.

    Options are parsed in ``make_context`` (the group's) and in ``invoke`` (the subcommand's, and the command
    body's ``typer.BadParameter``); ``dgpo`` alone still prints the help.
    """

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except _NO_ARGS_IS_HELP:
            raise
        except _click.ClickException as err:
            _usage_error(err)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except _NO_ARGS_IS_HELP:
            raise
        except _click.ClickException as err:
            _usage_error(err)


def _usage_error(err: Exception) -> NoReturn:
    message = err.format_message()
    context = getattr(err, "ctx", None)
    if isinstance(err, _click.UsageError) and context is not None:
        message += f" (see: {context.command_path} --help)"
    # A value a config refused (``build``) keeps its traceback for --debug; click's own usage errors have none.
    fail(ValueError(message), traceback_too=False, traceback_of=err.__cause__)


def fail(err: BaseException, traceback_too: bool = True, traceback_of: BaseException | None = None) -> NoReturn:
    """A user error (bad value, missing file): one red line on stderr (the terminal wraps it, rich does not) and exit
    code 2, no traceback unless :func:`debugging` — then the traceback (of ``traceback_of`` when given, e.g. the
    config error behind a usage error) comes first and the line still last.

    The message is printed as plain text (not rich markup, so ``[...]`` in a path survives) with its line breaks
    folded into spaces. Under torchrun / accelerate launch every rank fails the same way (start-up checks are
    computed identically or broadcast from rank 0, see :mod:`dgpo.distributed`), so only rank 0 prints.
    """
    from dgpo import distributed

    if distributed.is_main():
        console = Console(stderr=True)
        shown = traceback_of if traceback_of is not None else (err if traceback_too else None)
        if shown is not None and debugging():
            console.print(Text("".join(traceback.format_exception(shown)).rstrip()), soft_wrap=True)
        message = " ".join(str(err).split("\n")).strip() or type(err).__name__
        console.print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)  # one line, never folded
    raise typer.Exit(2) from err


def refuse_launcher(command: str) -> None:
    """``dgpo eval`` and ``dgpo compare`` do not split their work over processes: started by a launcher, every
    process would redo (and rewrite) the whole job, so refuse before any work."""
    from dgpo import distributed

    if distributed.world_size() > 1:
        fail(
            ValueError(
                f"run dgpo {command} as a single process; it was started with WORLD_SIZE={distributed.world_size()} "
                "(torchrun / accelerate launch), and only dgpo train uses several processes"
            )
        )


def build(make: Callable[..., T], options: dict[str, tuple[str, Any]], **fixed: Any) -> T:
    """``make(**fixed, **given)`` with the options given (not None), ``options`` being ``{"--k": ("k", k), ...}``.

    ``make`` (a config dataclass, or ``CompareSpec.preset``) checks every value itself. When it refuses, the option
    whose value it refuses on its own is named in click's form, ``Invalid value for '--k': k must be >= 1, got 0``;
    a refusal of values only together names the option that sets the field the refusal names (a
    :class:`~dgpo.ranges.SettingError`), else keeps the dataclass's own message.
    """
    given = {flag: (name, value) for flag, (name, value) in options.items() if value is not None}
    try:
        return make(**fixed, **{name: value for name, value in given.values()})
    except ValueError as err:
        culprit = _refused_alone(make, given, fixed)
        if culprit is not None:
            flag, problem = culprit
            raise typer.BadParameter(str(problem), param_hint=f"'{flag}'") from err
        name_the_option(err, given)
        raise


def name_the_option(err: ValueError, options: dict[str, tuple[str, Any]]) -> None:
    """Raise ``err`` in click's form naming the option that set the field a :class:`~dgpo.ranges.SettingError`
    names (``baseline`` not among the objectives: ``--baseline``), when that option was given; else return.
    ``options`` as for :func:`build`."""
    if isinstance(err, SettingError):
        for flag, (name, value) in options.items():
            if name == err.name and value is not None:
                raise typer.BadParameter(str(err), param_hint=f"'{flag}'") from err


def _refused_alone(make: Callable, given: dict[str, tuple[str, Any]], fixed: dict) -> tuple[str, ValueError] | None:
    """The first option whose value ``make`` refuses with every other option unset, and its refusal."""
    try:
        make(**fixed)
    except ValueError:
        return None  # refused without any option: no option is to blame
    for flag, (name, value) in given.items():
        try:
            make(**fixed, **{name: value})
        except ValueError as err:
            return flag, err
    return None
