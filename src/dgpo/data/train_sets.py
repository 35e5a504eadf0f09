"""Training sets for RL: local JSONL/parquet files or Hugging Face dataset ids, with ``problem``/``answer``.

Every defect of a file is reported as one ``ValueError`` naming the file and the row (1-based line for JSONL), so
``dgpo train`` can print it as one line before it touches the run directory.
"""

from __future__ import annotations

import json
from pathlib import Path

REQUIRED_FIELDS = ("problem", "answer")
#: Names accepted by ``dataset``, resolved to files in $DGPO_DATA_DIR (default ./data).
NAMED_DATASETS = {"dapo_math_17k": "dapo_math_17k.jsonl", "math": "math_train.jsonl", "gsm8k": "gsm8k_train.jsonl"}


def _check_rows(rows: list, origin: str, lines: list[int] | None = None) -> list[dict[str, str]]:
    """Rows with a usable answer; raises naming the first row that is not a mapping or lacks a field.

    Every row is checked, not just the first: a file whose 2nd row lacks ``answer`` would otherwise fail deep in
    the trainer with a bare ``KeyError``. ``lines`` are the file's line numbers of the rows (JSONL).
    """
    if not rows:
        raise ValueError(f"training set {origin} is empty")
    for index, row in enumerate(rows):
        where = f"line {lines[index]}" if lines else f"row {index + 1}"
        if not isinstance(row, dict):
            raise ValueError(f"training set {origin} {where} is not an object with problem/answer fields")
        missing = [f for f in REQUIRED_FIELDS if f not in row]
        if missing:
            raise ValueError(
                f"training set {origin} {where} lacks field(s) {', '.join(missing)}; found: {', '.join(map(str, row))}"
            )
    # Rows without a usable answer (e.g. MATH's empty \boxed{}) cannot be rewarded: drop them.
    kept = [
        {**row, "problem": str(row["problem"]), "answer": str(row["answer"])}
        for row in rows
        if row["answer"] is not None and str(row["answer"]).strip()
    ]
    if not kept:
        raise ValueError(f"training set {origin} has no row with a non-empty answer ({len(rows)} rows)")
    return kept


def _read_jsonl(path: Path) -> tuple[list, list[int] | None]:
    """The parsed rows and their line numbers (blank lines skipped); a ``.json`` file may also be one JSON array."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json" and text.lstrip().startswith("["):
        try:
            whole = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"training set {path} line {err.lineno} is not JSON ({err.msg})") from err
        return whole, None
    rows, lines = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ValueError(f"training set {path} line {number} is not JSON ({err.msg})") from err
        lines.append(number)
    return rows, lines


def load_train_set(name_or_path: str, split: str = "train") -> list[dict[str, str]]:
    """Rows with at least ``problem`` and ``answer`` (non-empty answers only).

    A path ending in ``.jsonl``/``.json``/``.parquet`` is read locally; anything else is taken as a Hugging Face
    dataset id and loaded with ``datasets.load_dataset(name, split=split)`` (needs the ``trl`` extra and a hub).
    """
    path = Path(name_or_path)
    if path.suffix in (".jsonl", ".json", ".parquet"):
        if not path.is_file():
            raise FileNotFoundError(f"training set file not found: {path}")
        if path.suffix == ".parquet":
            import pandas as pd  # datasets' own dependency; only needed for parquet

            try:
                rows = pd.read_parquet(path).to_dict("records")
            except Exception as err:  # pyarrow raises its own types for a file that is not parquet
                raise ValueError(f"training set {path} is not a readable parquet file ({type(err).__name__})") from err
            return _check_rows(rows, str(path))
        try:
            rows, lines = _read_jsonl(path)
        except UnicodeDecodeError as err:
            raise ValueError(f"training set {path} is not UTF-8 text") from err
        return _check_rows(rows, str(path), lines)
    try:
        import datasets
    except ImportError as err:
        raise ValueError(f"loading {name_or_path!r} from the hub needs `datasets` (pip install dgpo[trl])") from err
    try:
        rows = list(datasets.load_dataset(name_or_path, split=split))
    except (ConnectionError, OSError, ValueError) as err:  # offline, unknown id, no such split
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"could not load training set {name_or_path!r} from the hub: {first}") from err
    return _check_rows(rows, name_or_path)
