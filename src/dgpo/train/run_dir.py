"""What counts as a dgpo run directory, and claiming one for ``dgpo train`` (fresh start, ``--overwrite``, resume).

A directory holds a **dgpo run** when

1. its ``config.yaml`` is a YAML mapping holding every top-level key ``save_config`` has written since the first
   version (:data:`RUN_KEYS`) and loads as a :class:`~dgpo.train.run_config.RunConfig`, and
2. every other top-level entry is one ``dgpo train`` writes (:data:`RUN_ENTRIES`, the ``.tmp`` files of its
   atomic writes) or a ``dgpo eval`` output directory (``eval_config.json`` plus only eval's own files: the
   examples evaluate a run's ``final/`` into ``RUN_DIR/eval``).

No marker file is needed, so run directories made by earlier versions are recognised the same way. ``--overwrite``
deletes such a directory's contents (the directory itself stays, with its permissions) and an empty one is simply
used; anything else is refused, naming what dgpo did not write. Contents of subdirectories are not inspected: a
file put inside ``checkpoints/`` belongs to the run.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from rich.console import Console

from dgpo.claim import DirClaim, remove_entry
from dgpo.train.run_config import RunConfig, config_text, from_dict, merge, save_config, to_dict

#: The top-level keys of every config.yaml dgpo has written (RunConfig's fields since its first version).
RUN_KEYS = ("output_dir", "model", "dataset", "template", "seed", "task", "tiny", "warm_start", "rl", "held_out")
#: Files and directories ``dgpo train`` writes at the top of a run directory.
RUN_ENTRIES = frozenset(
    {
        "config.yaml",
        "warm_start",
        "warm_start.partial",
        "held_out_before.json",
        "held_out_after.json",
        "results.json",
        "metrics.jsonl",
        "checkpoints",
        "final",
    }
)
#: Files ``dgpo eval`` writes in its ``--out``.
EVAL_ENTRIES = frozenset({"eval_config.json", "samples.jsonl", "results.json", "results.md"})


def _written_by(name: str, entries: frozenset[str]) -> bool:
    return name in entries or (name.endswith(".tmp") and name[: -len(".tmp")] in entries)


def _entries(directory: Path) -> list[Path]:
    """The top-level entries of ``directory``, by name."""
    return sorted(directory.iterdir(), key=lambda p: p.name)


def _label(entry: Path) -> str:
    return entry.name + ("/" if entry.is_dir() else "")


def listing(names: list[str], limit: int = 6) -> str:
    """``a, b/, c`` — at most ``limit`` names, then how many more."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def is_eval_dir(path: Path) -> bool:
    """A ``dgpo eval --out`` directory: ``eval_config.json`` and only eval's own files."""
    if not path.is_dir() or path.is_symlink() or not (path / "eval_config.json").is_file():
        return False
    return all(_written_by(name, EVAL_ENTRIES) for name in os.listdir(path))


def config_problem(path: Path) -> str | None:
    """Why ``path`` (a config.yaml) is not a dgpo run config, or None when it is one."""
    if not path.is_file():
        return "no config.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return "a config.yaml that is not YAML"
    if not isinstance(data, dict) or any(key not in data for key in RUN_KEYS):
        return "a config.yaml that is not a dgpo run config"
    try:
        from_dict(RunConfig, merge(to_dict(RunConfig()), data))
    except ValueError as err:
        return f"a config.yaml dgpo cannot load ({err})"
    return None


def foreign_entries(run: Path) -> list[str]:
    """Top-level entries of ``run`` that ``dgpo train`` (or ``dgpo eval`` in a subdirectory) did not write."""
    ours = lambda entry: _written_by(entry.name, RUN_ENTRIES) or is_eval_dir(entry)  # noqa: E731
    return [_label(entry) for entry in _entries(run) if not ours(entry)]


def check_ours(run: Path, action: str, config: bool = True) -> None:
    """Raise a one-line ``ValueError`` unless the non-empty directory ``run`` holds only a dgpo run: the one check
    behind ``--overwrite`` (``action`` "delete"), a fresh start ("start a run in") and ``--resume``. ``config``:
    whether its config.yaml must be a dgpo run config too."""
    foreign = foreign_entries(run)
    if foreign:
        raise ValueError(f"{run} holds files dgpo did not write ({listing(foreign)}); refusing to {action} it")
    problem = config_problem(run / "config.yaml") if config else None
    if problem is not None:
        held = listing([_label(p) for p in _entries(run)])
        raise ValueError(
            f"{run} holds dgpo files ({held}) but {problem}, so it is not a run dgpo can resume or delete; "
            "remove it yourself or choose another --output-dir"
        )


def prepare_run_dir(
    cfg: RunConfig, out: Path, resume: bool, overwrite: bool, console: Console | None = None
) -> DirClaim | None:
    """Claim ``out`` for a fresh start (returns the claim, to release if the start fails) or for a resume (None).

    Fresh start: a missing or empty directory is used; one holding a dgpo run is refused, or with ``overwrite``
    emptied (printing what was deleted); anything else is refused with what it holds. ``config.yaml`` is written
    last, once the directory is ours. Resume: ``config.yaml`` is (re)written only where it differs — after a move,
    ``output_dir`` now names the directory it is in.
    """
    console = console or Console()
    if resume:
        if not out.is_dir():
            raise FileNotFoundError(f"run directory not found: {out}")
        # --resume takes no folder that --overwrite would refuse. A folder without config.yaml yet is one
        # `dgpo compare` prepared (its shared warm start copied in); the CLI's --resume requires the file itself.
        check_ours(out, "resume a run in", config=(out / "config.yaml").exists())
        config = out / "config.yaml"
        if not config.is_file() or config.read_text(encoding="utf-8") != config_text(cfg):
            save_config(cfg, config)
        return None
    if out.is_dir() and any(out.iterdir()):
        check_ours(out, "delete" if overwrite else "start a run in")
        if not overwrite:
            raise ValueError(f"{out} already holds a run; use --resume {out}, --overwrite, or another --output-dir")
        deleted = [_label(p) for p in _entries(out)]
        for entry in out.iterdir():
            remove_entry(entry)
        console.print(f"--overwrite: deleted the run in {out} ({listing(deleted, limit=len(deleted))})", soft_wrap=True)
    claim = DirClaim.take(out)
    save_config(cfg, out / "config.yaml")
    return claim
