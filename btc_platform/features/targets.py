"""Forward log-return targets, looked up by timestamp so a missing bar never shifts a target."""

from __future__ import annotations

import numpy as np
import pandas as pd

DEFAULT_HORIZONS = {"1h": 1, "24h": 24}


def compute_forward_returns(
    bars: pd.DataFrame, horizons: dict[str, int], bar: pd.Timedelta
) -> pd.DataFrame:
    """`target_return_{h}` = log(close at ts + n*bar / close at ts): from the decision at bar t's
    close to bar t+n's close. NaN where that bar is absent (or its close is NaN).

    Filled bars (is_filled) carry the last traded price, so they count as present.
    The newest rows need later bars: pass them in, then keep only the rows you want.
    """
    if bars["symbol"].nunique(dropna=True) > 1:
        raise ValueError("compute_forward_returns expects one symbol")
    if bars["ts"].duplicated().any():
        raise ValueError("bars has duplicate ts; targets would be ambiguous")
    bar = pd.Timedelta(bar)
    ts = pd.DatetimeIndex(bars["ts"])
    close = pd.Series(bars["close"].to_numpy(dtype="float64"), index=ts)

    out = bars[["ts", "symbol"]].reset_index(drop=True)
    out["close"] = close.to_numpy()
    for name, n in horizons.items():
        future = close.reindex(ts + n * bar).to_numpy()
        out[f"target_return_{name}"] = np.log(future / close.to_numpy())
    return out
