"""Alpaca-style instruction/input/output rows for LLM fine-tuning."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from btc_platform.datasets.splits import FEATURE_COLUMNS, atomic_directory, to_utc

INSTRUCTION_COLUMNS = ["instruction", "input", "output"]


def _sig(x: float, digits: int) -> float:
    # Significant digits, not decimals: prices span 1e-5 (memecoins) to 1e5 (BTC).
    return float(f"{x:.{digits}g}")


def _hours(horizon: str) -> int:
    hours = pd.Timedelta(horizon) / pd.Timedelta("1h")
    if hours <= 0 or hours != int(hours):
        raise ValueError(f"horizon must be a positive whole number of hours, got {horizon!r}")
    return int(hours)


def build_instruction_rows(
    df: pd.DataFrame,
    *,
    horizon: str = "24h",
    feature_cols: Sequence[str] = FEATURE_COLUMNS,
) -> pd.DataFrame:
    """One row per (symbol, ts) with features known at ts as input and the target as output."""
    hours, target = _hours(horizon), f"target_return_{horizon}"
    feature_cols = list(feature_cols)
    leaked = [c for c in feature_cols if c.startswith("target_")]
    if leaked:
        raise ValueError(f"targets are never inputs: {leaked}")
    needed = ["ts", "symbol", "close", target, *feature_cols]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(f"build_instruction_rows: missing columns {missing}")

    rows = df[needed].dropna().assign(ts=lambda d: to_utc(d["ts"]))
    rows = rows.sort_values(["ts", "symbol"], kind="mergesort")
    out = []
    for values in rows.to_dict(orient="records"):
        stamp = values["ts"].strftime("%Y-%m-%dT%H:%M:%SZ")
        features = {
            "asset_symbol": str(values["symbol"]),
            "asset_class": "crypto",
            "timestamp": stamp,
            "price_close": _sig(values["close"], 10),
            **{c: _sig(values[c], 6) for c in feature_cols},
        }
        log_ret = float(values[target])
        prediction = {
            f"predicted_return_{horizon}": round(log_ret, 8),
            # Percent simple return implied by the log return: (e^r - 1) * 100.
            f"predicted_return_pct_{horizon}": round(math.expm1(log_ret) * 100, 6),
        }
        out.append({
            "instruction": (
                f"Predict the {hours}-hour forward log return and percent return for "
                f"{values['symbol']} at {stamp} based on the following technical features."
            ),
            "input": json.dumps(features),
            "output": json.dumps(prediction),
        })
    return pd.DataFrame(out, columns=INSTRUCTION_COLUMNS)


def write_instruction_files(rows: pd.DataFrame, out_dir: Path) -> dict[str, Path]:
    """Write instructions.csv and instructions.jsonl atomically (all or nothing)."""
    out_dir = Path(out_dir)
    with atomic_directory(out_dir) as tmp:
        rows[INSTRUCTION_COLUMNS].to_csv(tmp / "instructions.csv", index=False)
        with open(tmp / "instructions.jsonl", "w", encoding="utf-8") as fh:
            for rec in rows[INSTRUCTION_COLUMNS].to_dict(orient="records"):
                fh.write(json.dumps(rec) + "\n")
    return {"csv": out_dir / "instructions.csv", "jsonl": out_dir / "instructions.jsonl"}
