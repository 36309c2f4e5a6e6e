"""Resample one symbol's 1-minute candles into regular OHLCV bars, filling empty bars.

Each bar carries its minute coverage: `bar_coverage` = n_source_bars / minutes in the bar (22 of 60
minutes: 0.367). A partial bar's prices are real trades, but its volume is only the minutes that
arrived, so volume-based features downstream mark it unreliable (features.grid)."""

from __future__ import annotations

import numpy as np
import pandas as pd

OUTPUT_COLUMNS = [
    "ts", "symbol", "open", "high", "low", "close", "volume", "n_source_bars", "bar_coverage", "is_filled",
    "source",
]
MINUTE = pd.Timedelta(minutes=1).value


def ts_to_ns(ts: pd.Series) -> np.ndarray:
    """Epoch nanoseconds of a tz-aware timestamp column, whatever its unit (ns or us)."""
    return pd.DatetimeIndex(ts).tz_convert("UTC").as_unit("ns").asi8


def _utc(t: pd.Timestamp) -> pd.Timestamp:
    t = pd.Timestamp(t)
    if t.tzinfo is None:
        raise ValueError(f"timestamp {t} must be timezone-aware (UTC)")
    return t.tz_convert("UTC")


def _join_sources(values: pd.Series) -> str | None:
    uniq = sorted(str(v) for v in values.dropna().unique())  # few distinct values
    return ",".join(uniq) if uniq else None


def resample_ohlcv(
    candles: pd.DataFrame,
    rule: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    symbol: str | None = None,
) -> pd.DataFrame:
    """Bars of `rule` for every open time in [start, end), labelled by open time, left-closed.

    Bars align to the Unix epoch (so 4h bars open at 00/04/08.. UTC, 1D at midnight UTC).
    A bar without source rows repeats the previous close with volume 0 and `is_filled=True`;
    the previous close may come from rows before `start` (pass them to continue a series).
    `symbol` names the output when `candles` is empty (an outage day still yields filled bars).
    """
    step = pd.Timedelta(rule).value  # ns; fixed-length rules only ("5min".."1D")
    s_ns, e_ns = _utc(start).value, _utc(end).value
    symbols = candles["symbol"].dropna().unique() if len(candles) else []
    if len(symbols) > 1:
        raise ValueError(f"resample_ohlcv expects one symbol, got {sorted(symbols)}")
    symbol = symbol if symbol is not None else (symbols[0] if len(symbols) else None)

    c = candles.sort_values("ts", kind="stable")
    t = ts_to_ns(c["ts"])
    first_bar = -(-s_ns // step) * step  # ceil: only bars whose open time is >= start
    grid = np.arange(first_bar, e_ns, step, dtype=np.int64)

    # Rows of [start, end) go to the bar they fall in; later rows are never looked at.
    in_win = (t >= first_bar) & (t < e_ns)
    w = c.loc[in_win, ["open", "high", "low", "close", "volume"]]
    bar = pd.Index(t[in_win] // step * step, name="bar")
    agg = w.groupby(bar, sort=True).agg(
        open=("open", "first"), high=("high", "max"), low=("low", "min"),
        close=("close", "last"), volume=("volume", "sum"), n_source_bars=("close", "size"),
    ).reindex(grid)

    n = agg["n_source_bars"].fillna(0).astype("int64")
    filled = (n == 0).to_numpy()
    # Carry the last known close forward, seeded by the last row before the first bar.
    before = c.loc[t < first_bar, "close"].dropna()
    prev_close = before.iloc[-1] if len(before) else np.nan
    carried = agg["close"].ffill().fillna(prev_close)
    for col in ("open", "high", "low", "close"):
        agg[col] = agg[col].where(~filled, carried)
    agg["volume"] = agg["volume"].where(~filled, 0.0)

    out = agg.astype({k: "float64" for k in ("open", "high", "low", "close", "volume")})
    unit = pd.DatetimeIndex(c["ts"]).unit if len(c) else "ns"
    out.insert(0, "ts", pd.to_datetime(grid, utc=True).as_unit(unit))
    out.insert(1, "symbol", symbol)
    out["n_source_bars"] = n.to_numpy()
    # The input is 1-minute candles: a bar expects as many rows as it has minutes.
    out["bar_coverage"] = n.to_numpy() / (step / MINUTE)
    out["is_filled"] = filled
    out["source"] = _bar_sources(c.loc[in_win, "source"], bar, grid, _join_sources(c["source"]))
    return out.reset_index(drop=True)[OUTPUT_COLUMNS]


def _bar_sources(src: pd.Series, bar: pd.Index, grid: np.ndarray, default: str | None) -> np.ndarray:
    """Each bar's vendor(s), sorted and comma-joined; filled bars name the input's vendor(s)."""
    if src.nunique(dropna=True) <= 1:
        return np.full(len(grid), default, dtype=object)
    # One bit per vendor per bar, then one string per distinct combination (there are few).
    codes, names = pd.factorize(src.fillna("unknown").astype(str), sort=True)
    mask = np.zeros(len(grid), dtype=np.int64)
    np.bitwise_or.at(mask, np.searchsorted(grid, bar.to_numpy()), np.int64(1) << codes)
    combos, inverse = np.unique(mask, return_inverse=True)
    text = [",".join(names[[i for i in range(len(names)) if m >> i & 1]]) or default for m in combos]
    return np.asarray(text, dtype=object)[inverse]
