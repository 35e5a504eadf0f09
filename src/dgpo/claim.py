"""Output directories that a failed start leaves as it found them.

``dgpo train`` and ``dgpo eval`` create their output directory (and any missing parents) and write their settings
before the expensive part begins. If the start then fails — a model that does not load, a Ctrl-C during the warm
start — that debris would make the corrected re-run refuse the directory ("already holds a run") or resume the
bad settings. A :class:`DirClaim` records what existed when it was taken and, on :meth:`DirClaim.release`,
removes exactly what was added since; files that existed are the command's to leave alone until its first real
result is on disk. Then it calls :meth:`DirClaim.commit`, and the claim no longer undoes anything.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass
class DirClaim:
    path: Path
    created: list[Path]  # directories this claim created, deepest first (empty: ``path`` existed)
    existing: frozenset[str]  # entries of ``path`` when the claim was taken
    committed: bool = False

    @classmethod
    def take(cls, path: str | Path, option: str = "--output-dir") -> DirClaim:
        """Create ``path`` (and missing parents) if needed and remember what it held."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise ValueError(f"{option} {path} exists and is not a directory")
        created, probe = [], path
        while not probe.exists() and not probe.is_symlink() and probe != probe.parent:
            created.append(probe)
            probe = probe.parent
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ValueError(f"cannot create {option} {path}: {err.strerror or err}") from err
        return cls(path, created, frozenset() if created else frozenset(os.listdir(path)))

    def commit(self) -> None:
        """The command's first result is on disk: from now on the directory is the command's to keep."""
        self.committed = True

    def release(self) -> None:
        """Undo the start (a no-op once committed): remove what it added.

        Parent directories the claim created are removed only while empty, so a sibling that another process
        created in the meantime (two runs started at once into ``runs/a`` and ``runs/b``) survives.
        """
        if self.committed:
            return
        if self.created:
            shutil.rmtree(self.path, ignore_errors=True)
            for parent in self.created[1:]:
                try:
                    parent.rmdir()
                except OSError:
                    break
            return
        for name in set(os.listdir(self.path)) - self.existing:
            remove_entry(self.path / name)


def remove_entry(entry: Path) -> None:
    """Delete a file, a link (not its target) or a whole directory tree."""
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)
