"""Training sets for RL: local JSONL/parquet files or Hugging Face dataset ids, with ``problem``/``answer``."""

from __future__ import annotations

import json
from pathlib import Path

REQUIRED_FIELDS = ("problem", "answer")


def _check_rows(rows: list[dict], origin: str) -> list[dict[str, str]]:
    if not rows:
        raise ValueError(f"training set {origin} is empty")
    missing = [f for f in REQUIRED_FIELDS if f not in rows[0]]
    if missing:
        raise ValueError(f"training set {origin} lacks field(s) {', '.join(missing)}; found: {', '.join(rows[0])}")
    # Rows without a usable answer (e.g. MATH's empty \boxed{}) cannot be rewarded: drop them.
    return [
        {**row, "problem": str(row["problem"]), "answer": str(row["answer"])}
        for row in rows
        if str(row["answer"]).strip()
    ]


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

            rows = pd.read_parquet(path).to_dict("records")
        else:
            with path.open(encoding="utf-8") as handle:
                rows = [json.loads(line) for line in handle if line.strip()]
        return _check_rows(rows, str(path))
    try:
        import datasets
    except ImportError as err:
        raise ImportError(f"loading {name_or_path!r} from the hub needs `datasets` (pip install dgpo[trl])") from err
    return _check_rows(list(datasets.load_dataset(name_or_path, split=split)), name_or_path)
