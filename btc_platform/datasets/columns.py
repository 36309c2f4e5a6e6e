"""Which columns of a training table are keys, features and targets, discovered by exclusion.

The table grows as vendors and features are added (82 technical columns, multi-timeframe copies,
macro, on-chain, sentiment, market structure), so features are never listed by hand: every numeric
column that is not a key, a bar id, a target or a bookkeeping column is a feature, unless it is
entirely null (a vendor without a key, a series that is always missing).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

# Identify a row or say where it came from: never features.
KEY_COLUMNS = ("symbol", "ts", "decision_at", "asset_symbol", "asset_class", "partition_date",
               "source", "ingested_at", "is_filled")
# How well the row's bar is covered (minutes present, the flags of its features): carried with every
# row so users can filter, never features (a model must not learn from the data's gaps).
QUALITY_COLUMNS = ("n_source_bars", "bar_coverage", "partial_bar", "lookback_gap")
TARGET_PREFIX = "target_"
# Strings saying why a value is missing, or which vendor gave it: provenance, not features.
BOOKKEEPING_SUFFIXES = ("_missing_reason", "_source")
# The small core every usable row must carry (the completeness check measures these).
REQUIRED_CORE = ("close", "rsi_14", "macd", "sma_20", "volatility_30")
HORIZONS: dict[str, pd.Timedelta] = {h: pd.Timedelta(h) for h in ("1h", "24h", "3d", "5d", "90d")}


def to_utc(ts: pd.Series) -> pd.Series:
    """Timestamps as UTC-aware; naive values are taken to be UTC already."""
    ts = pd.to_datetime(ts)
    return ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")


def is_target(column: str) -> bool:
    return column.startswith(TARGET_PREFIX)


def candidate_features(columns: Iterable[str]) -> list[str]:
    """Columns that may be features by name alone (keys, targets and bookkeeping excluded)."""
    return [c for c in columns if c not in KEY_COLUMNS and c not in QUALITY_COLUMNS and not is_target(c)
            and not c.endswith(BOOKKEEPING_SUFFIXES)]


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """Numeric, not entirely null candidate features of `frame`, in table order.

    Pass the training part only: which columns carry data is then decided without looking ahead.
    """
    out = []
    for col in candidate_features(frame.columns):
        series = frame[col]
        if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
            continue
        if series.notna().any():
            out.append(col)
    return out


def horizon_of(target: str) -> pd.Timedelta:
    """The forward horizon of a target column: target_return_24h -> 24h, target_label_90d -> 90d."""
    suffix = target.rsplit("_", 1)[-1]
    if suffix not in HORIZONS:
        raise ValueError(f"{target!r} names no known horizon (one of {list(HORIZONS)})")
    return HORIZONS[suffix]


def targets_within(columns: Iterable[str], horizon: pd.Timedelta) -> list[str]:
    """Target columns whose horizon is at most `horizon` (others would cross a purge of `horizon`)."""
    out = []
    for c in columns:
        if not is_target(c):
            continue
        suffix = c.rsplit("_", 1)[-1]
        if c == "target_entry_price" or (suffix in HORIZONS and HORIZONS[suffix] <= horizon):
            out.append(c)
    return out


def bar_length(frame: pd.DataFrame) -> pd.Timedelta:
    """The table's bar: decision_at - ts where the table says so, else the commonest ts step."""
    if "decision_at" in frame.columns and len(frame):
        return pd.Timedelta((to_utc(frame["decision_at"]) - to_utc(frame["ts"])).median())
    steps = frame.sort_values(["symbol", "ts"])
    diffs = to_utc(steps["ts"]).groupby(steps["symbol"]).diff().dropna()
    if diffs.empty:
        raise ValueError("cannot infer the bar length from fewer than two rows per symbol")
    return pd.Timedelta(diffs.mode().iloc[0])


def with_decision_at(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with UTC `ts` and `decision_at` (ts + bar where the table lacks it)."""
    out = frame.assign(ts=to_utc(frame["ts"]))
    if "decision_at" in out.columns:
        return out.assign(decision_at=to_utc(out["decision_at"]))
    return out.assign(decision_at=out["ts"] + bar_length(out))


def drop_warmup(frame: pd.DataFrame, required: Iterable[str] = REQUIRED_CORE) -> tuple[pd.DataFrame, int]:
    """Drop each symbol's leading rows before its indicators are first all defined.

    An RSI is undefined for its first 14 bars by construction; that is warm-up, not missing data,
    so it is removed before completeness is measured. Returns the frame and the rows dropped.
    """
    required = [c for c in required if c in frame.columns]
    frame = frame.sort_values(["symbol", "ts"], kind="mergesort").reset_index(drop=True)
    ready = frame[required].notna().all(axis=1)
    warmed = ready.groupby(frame["symbol"]).cummax()
    return frame[warmed].reset_index(drop=True), int((~warmed).sum())
