"""Time-ordered train/validation/test splits with purging, numeric arrays and a content hash."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

FEATURE_COLUMNS: list[str] = [
    "rsi_14", "macd", "macd_signal", "macd_histogram",
    "bb_upper", "bb_middle", "bb_lower",
    "sma_20", "sma_50", "sma_200", "ema_12", "ema_26",
    "atr_14", "log_return_1", "volatility_30",
]
# Forward horizon of each target: the purge gap must cover the longest one present.
TARGET_HORIZONS: dict[str, pd.Timedelta] = {
    "target_return_1h": pd.Timedelta("1h"),
    "target_return_24h": pd.Timedelta("24h"),
}
TARGET_COLUMNS: list[str] = list(TARGET_HORIZONS)
SPLIT_NAMES: tuple[str, ...] = ("train", "validation", "test")


def to_utc(ts: pd.Series) -> pd.Series:
    """Timestamps as UTC-aware; naive values are taken to be UTC already."""
    ts = pd.to_datetime(ts)
    return ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")


def time_split(
    df: pd.DataFrame,
    *,
    train_frac: float = 0.7,
    val_frac: float = 0.15,
    gap: pd.Timedelta,
    time_col: str = "ts",
) -> dict[str, pd.DataFrame]:
    """Split by time boundaries shared by all symbols; purge `gap` before each boundary.

    train = ts < b1 - gap, validation = b1 <= ts < b2 - gap, test = ts >= b2, so no label
    window of an earlier split reaches into a later one.
    """
    if not (0 < train_frac < 1 and 0 < val_frac < 1 and train_frac + val_frac < 1):
        raise ValueError(
            f"need 0 < train_frac, val_frac and a sum < 1; got {train_frac}, {val_frac}"
        )
    gap = pd.Timedelta(gap)
    horizons = [h for c, h in TARGET_HORIZONS.items() if c in df.columns]
    if horizons and gap < max(horizons):
        raise ValueError(f"gap {gap} is shorter than the longest target horizon {max(horizons)}")
    if gap < pd.Timedelta(0):
        raise ValueError(f"gap must be >= 0, got {gap}")

    df = df.assign(**{time_col: to_utc(df[time_col])})
    sort_cols = [time_col] + (["symbol"] if "symbol" in df.columns else [])
    df = df.sort_values(sort_cols, kind="mergesort").reset_index(drop=True)
    stamps = pd.DatetimeIndex(df[time_col].unique()).sort_values()
    n = len(stamps)
    i1, i2 = int(n * train_frac), int(n * (train_frac + val_frac))
    if n == 0 or i2 >= n:
        raise ValueError(
            f"time_split: {len(df)} rows over {n} distinct timestamps; need at least 3"
        )
    b1, b2 = stamps[i1], stamps[i2]
    ts = df[time_col]
    masks = {
        "train": ts < b1 - gap,
        "validation": (ts >= b1) & (ts < b2 - gap),
        "test": ts >= b2,
    }
    splits = {name: df[m].reset_index(drop=True) for name, m in masks.items()}
    empty = [name for name, part in splits.items() if part.empty]
    if empty:
        span = stamps[-1] - stamps[0]
        raise ValueError(
            f"time_split: {', '.join(empty)} would be empty: {len(df)} rows over {n} distinct "
            f"timestamps spanning {span}; with train_frac={train_frac}, val_frac={val_frac} each "
            f"of train and validation must span more than gap={gap} (boundaries {b1}, {b2})"
        )
    return splits


def split_summary(splits: dict[str, pd.DataFrame], time_col: str = "ts") -> dict:
    """Rows, time range and per-symbol counts per split, as plain JSON types."""
    out: dict = {}
    for name, part in splits.items():
        ts = part[time_col] if len(part) else None
        per_symbol = part["symbol"].value_counts().sort_index() if "symbol" in part else pd.Series()
        out[name] = {
            "rows": int(len(part)),
            "ts_min": ts.min().isoformat() if ts is not None else None,
            "ts_max": ts.max().isoformat() if ts is not None else None,
            "per_symbol": {str(k): int(v) for k, v in per_symbol.items()},
        }
    return out


@contextlib.contextmanager
def atomic_directory(out_dir: Path) -> Iterator[Path]:
    """Yield a temp dir beside out_dir; swap it into place only if the block succeeds."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        yield tmp
        old = None
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            os.replace(out_dir, old)
        try:
            os.replace(tmp, out_dir)
        except OSError:
            if old is not None:
                os.replace(old, out_dir)  # put the previous build back
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_split_files(
    splits: dict[str, pd.DataFrame],
    out_dir: Path,
    feature_cols: Sequence[str],
    target_col: str,
    time_col: str = "ts",
) -> dict[str, Path]:
    """Write parquet per split, splits.npz (float32 arrays) and summary.json, atomically.

    Rows with a NaN feature or target are dropped so parquet and npz match row for row.
    """
    feature_cols = list(feature_cols)
    cols = feature_cols + [target_col]
    clean, dropped = {}, {}
    for name in SPLIT_NAMES:
        part = splits[name]
        keep = part[cols].notna().all(axis=1)
        clean[name], dropped[name] = part[keep].reset_index(drop=True), int((~keep).sum())

    arrays: dict[str, np.ndarray] = {"feature_names": np.array(feature_cols, dtype=str)}
    for name, part in clean.items():
        arrays[f"X_{name}"] = part[feature_cols].to_numpy(dtype=np.float32)
        arrays[f"y_{name}"] = part[target_col].to_numpy(dtype=np.float32)
        arrays[f"ts_{name}"] = pd.DatetimeIndex(to_utc(part[time_col])).as_unit("ns").asi8
        arrays[f"symbol_{name}"] = part["symbol"].astype(str).to_numpy(dtype=str)

    summary = split_summary(clean, time_col)
    for name in SPLIT_NAMES:
        summary[name]["dropped_nan_rows"] = dropped[name]
    summary["feature_columns"], summary["target_column"] = feature_cols, target_col

    out_dir = Path(out_dir)
    with atomic_directory(out_dir) as tmp:
        for name, part in clean.items():
            part.to_parquet(tmp / f"{name}.parquet", index=False)
        np.savez(tmp / "splits.npz", **arrays)
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    paths = {name: out_dir / f"{name}.parquet" for name in SPLIT_NAMES}
    paths.update(npz=out_dir / "splits.npz", summary=out_dir / "summary.json")
    return paths


def _column_bytes(col: pd.Series) -> bytes:
    if isinstance(col.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(col):
        return pd.DatetimeIndex(to_utc(col)).as_unit("ns").asi8.astype("<i8").tobytes()
    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        values = col.to_numpy(dtype="<f8", na_value=np.nan)
        values[np.isnan(values)] = np.nan  # one NaN bit pattern, whatever produced it
        return values.tobytes()
    return "\x1f".join("\x00" if pd.isna(v) else str(v) for v in col).encode()


def content_hash(df: pd.DataFrame) -> str:
    """sha256 over column names and values, independent of row and column order."""
    cols = sorted(df.columns)
    keys = [c for c in ("ts", "symbol") if c in cols]
    rows = df[cols].sort_values(keys + [c for c in cols if c not in keys], kind="mergesort")
    h = hashlib.sha256()
    for c in cols:
        h.update(f"{c}:{rows[c].dtype.kind};".encode())
        h.update(_column_bytes(rows[c]))
    return h.hexdigest()
