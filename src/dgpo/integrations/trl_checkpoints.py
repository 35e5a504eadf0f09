"""Checkpoints of :class:`dgpo.integrations.trl.DGPOTrainer`: the completion marker and the newest complete checkpoint.

One home for both sides of the protocol: the trainer writes the marker into a checkpoint folder once everything else
is on disk, and resume (``dgpo train --resume``, :mod:`dgpo.train.rl`) only ever picks a folder that has it. The
integration owns it because its trainer writes the folders; ``dgpo.train`` reads it from here. No TRL import.
"""

from __future__ import annotations

from pathlib import Path

#: Written (atomically) into a checkpoint folder once the whole checkpoint is saved.
COMPLETE_MARKER = "dgpo_checkpoint_complete"


def last_checkpoint(checkpoints: Path) -> str | None:
    """The newest checkpoint that was completely written (see DGPOTrainer._save_checkpoint)."""
    found = sorted(checkpoints.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    complete = [p for p in found if (p / COMPLETE_MARKER).exists()]
    return str(complete[-1]) if complete else None


def checkpoint_step(checkpoint: str) -> int:
    """The optimiser step of a ``checkpoint-<step>`` folder."""
    return int(Path(checkpoint).name.rsplit("-", 1)[1])
