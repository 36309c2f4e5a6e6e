"""Technical indicators with `ta` 0.11's exact semantics, vectorized (ta's ATR is a Python loop).

Every value at row t uses rows <= t only, so features never look ahead and a longer history
never changes an earlier row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURE_COLUMNS = [
    "rsi_14", "macd", "macd_signal", "macd_histogram", "bb_upper", "bb_middle", "bb_lower",
    "sma_20", "sma_50", "sma_200", "ema_12", "ema_26", "atr_14", "log_return_1", "volatility_30",
]


def _ema(s: pd.Series, n: int) -> pd.Series:
    # ta: ewm(span=n, adjust=False) started at the first value, NaN until n values are seen.
    return s.ewm(span=n, min_periods=n, adjust=False).mean()


def _rsi(close: pd.Series, n: int = 14) -> pd.Series:
    diff = close.diff()
    # As in ta, the first row's missing diff counts as a 0.0 gain and loss inside the average.
    up = diff.where(diff > 0, 0.0)
    down = -diff.where(diff < 0, 0.0)
    ema_up = up.ewm(alpha=1 / n, min_periods=n, adjust=False).mean()
    ema_down = down.ewm(alpha=1 / n, min_periods=n, adjust=False).mean()
    rsi = 100 - 100 / (1 + ema_up / ema_down)
    # ta returns 100 whenever the average loss is 0 (a flat series included).
    return rsi.mask(ema_down == 0, 100.0)


def _atr(high: pd.Series, low: pd.Series, close: pd.Series, n: int = 14) -> pd.Series:
    prev = close.shift(1)
    # fmax skips NaN like ta's DataFrame.max(axis=1): row 0's true range is high - low.
    tr = pd.Series(np.fmax(high - low, np.fmax((high - prev).abs(), (low - prev).abs())),
                   index=close.index)
    if len(tr) < n:
        return pd.Series(np.nan, index=close.index)  # ta raises IndexError here
    # Wilder smoothing seeded with the mean of the first n true ranges at row n-1. ta writes
    # 0.0 in rows 0..n-2; we write NaN there on purpose: 0.0 would read as a real (zero) range.
    seeded = tr.copy()
    seeded.iloc[: n - 1] = np.nan
    seeded.iloc[n - 1] = tr.iloc[:n].mean()
    return seeded.ewm(alpha=1 / n, adjust=False).mean()


def compute_technical_features(bars: pd.DataFrame, bars_per_year: float) -> pd.DataFrame:
    """Indicators for one symbol's bars sorted by ts; filled bars count as ordinary bars."""
    if not bars["ts"].is_monotonic_increasing:
        raise ValueError("bars must be sorted by ts")
    if bars["symbol"].nunique(dropna=True) > 1:
        raise ValueError("compute_technical_features expects one symbol")
    bars = bars.reset_index(drop=True)
    close = bars["close"].astype("float64")
    high, low = bars["high"].astype("float64"), bars["low"].astype("float64")

    out = pd.DataFrame({"ts": bars["ts"], "symbol": bars["symbol"], "close": close})
    out["rsi_14"] = _rsi(close)
    ema_12, ema_26 = _ema(close, 12), _ema(close, 26)
    out["macd"] = ema_12 - ema_26
    out["macd_signal"] = _ema(out["macd"], 9)  # ta's EMA of MACD starts at MACD's first value
    out["macd_histogram"] = out["macd"] - out["macd_signal"]  # ta calls this macd_diff
    mid = close.rolling(20, min_periods=20).mean()
    std = close.rolling(20, min_periods=20).std(ddof=0)  # ta uses the population std
    out["bb_upper"], out["bb_middle"], out["bb_lower"] = mid + 2 * std, mid, mid - 2 * std
    for n in (20, 50, 200):
        out[f"sma_{n}"] = close.rolling(n, min_periods=n).mean()
    out["ema_12"], out["ema_26"] = ema_12, ema_26
    out["atr_14"] = _atr(high, low, close)
    out["log_return_1"] = np.log(close / close.shift(1))
    out["volatility_30"] = out["log_return_1"].rolling(30, min_periods=30).std() * np.sqrt(bars_per_year)
    return out.astype({c: "float64" for c in FEATURE_COLUMNS})
