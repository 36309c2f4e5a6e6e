"""A content hash of a table, independent of row and column order: the dataset version's root."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from btc_platform.datasets.columns import to_utc


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
    rows = df[cols].sort_values(keys, kind="mergesort") if keys else df[cols]
    h = hashlib.sha256()
    for c in cols:
        h.update(f"{c}:{rows[c].dtype.kind};".encode())
        h.update(_column_bytes(rows[c]))
    return h.hexdigest()
