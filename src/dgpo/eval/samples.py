"""``samples.jsonl``: one line per generated sample, appended as produced, read back for resume and summary.

A kill can leave a half-written last line; :func:`load_samples` truncates the file back to its last complete
line, so a resumed run appends cleanly and nothing is counted twice.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

SampleKey = tuple[str, str, int]  # (benchmark, problem id, sample index)


def load_samples(path: Path) -> dict[SampleKey, dict]:
    """Finished samples by key; repairs a torn final line in place."""
    if not path.exists():
        return {}
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with path.open("r+b") as handle:
            handle.truncate(end)
    samples: dict[SampleKey, dict] = {}
    for number, line in enumerate(data[:end].splitlines(), start=1):
        if line.strip():
            try:
                record = json.loads(line)
                samples[(record["benchmark"], record["id"], int(record["sample"]))] = record
            except (ValueError, KeyError, TypeError) as err:  # not dgpo's: say where, never a bare KeyError
                raise ValueError(f"{path} line {number} is not a dgpo sample record ({type(err).__name__})") from err
    return samples


class SampleWriter:
    """Appends records and flushes each batch to disk (``fsync``), so a kill loses at most the batch in flight."""

    def __init__(self, path: Path):
        self.handle = path.open("a", encoding="utf-8")

    def write(self, records: list[dict]) -> None:
        for record in records:
            self.handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self) -> None:
        self.handle.close()
