"""The examples stay runnable: the verl data preparation script on a small file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def test_prepare_data_writes_verl_parquet(tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"problem": f"{i}+1?", "answer": str(i + 1)}) + "\n" for i in range(3)))
    out = tmp_path / "verl"
    script = ROOT / "examples" / "verl" / "prepare_data.py"
    subprocess.run(
        [sys.executable, str(script), "--train", str(train), "--val", "amc23", "--out", str(out)], check=True
    )
    rows = pd.read_parquet(out / "train.parquet")
    assert len(rows) == 3 and len(pd.read_parquet(out / "val.parquet")) == 40
    first = rows.iloc[0]
    assert first["reward_model"]["ground_truth"] == "1" and first["data_source"] == "train"
    assert first["prompt"][0]["content"].startswith("0+1?\nPlease reason step by step")
