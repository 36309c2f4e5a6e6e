"""The platform's bar timeframes, resampling 1-minute candles into all of them, and the
multi-timeframe join that hands each bar the last *closed* bar of every higher timeframe.

Time convention (DESIGN.md): a bar is labelled by its open time `ts` and covers [ts, ts + bar);
it closes, and its values become known, at `ts + bar`. Everything here reasons on close times.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from btc_platform.features.resample import _utc, resample_ohlcv

DAYS_PER_YEAR = 365  # crypto trades every day of the year


@dataclass(frozen=True)
class Timeframe:
    """One bar size: `rule` for pandas/`resample_ohlcv`, `bar` its length."""

    name: str
    rule: str
    bar: pd.Timedelta
    bars_per_day: int
    bars_per_year: int  # for annualizing (365 days: crypto never closes)


def _timeframe(name: str, rule: str) -> Timeframe:
    bar = pd.Timedelta(rule)
    per_day = pd.Timedelta(days=1) // bar
    return Timeframe(name, rule, bar, int(per_day), int(per_day * DAYS_PER_YEAR))


TIMEFRAMES: dict[str, Timeframe] = {
    name: _timeframe(name, rule)
    for name, rule in [("5m", "5min"), ("15m", "15min"), ("1h", "1h"), ("4h", "4h"), ("1d", "1D")]
}


def timeframe_bar(timeframe: str | pd.Timedelta) -> pd.Timedelta:
    """The bar length of a TIMEFRAMES name ("4h", "1d") or of anything pd.Timedelta reads."""
    if isinstance(timeframe, str) and timeframe in TIMEFRAMES:
        return TIMEFRAMES[timeframe].bar
    bar = pd.Timedelta(timeframe)
    if bar <= pd.Timedelta(0):
        raise ValueError(f"timeframe {timeframe!r} must be a positive duration")
    return bar


def resample_all(
    candles_1m: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    symbol: str,
    *,
    timeframes: Iterable[str] = tuple(TIMEFRAMES),
) -> dict[str, pd.DataFrame]:
    """`resample_ohlcv` of one symbol's 1-minute candles into each timeframe (5m .. 1d).

    Every timeframe is built straight from the minutes (no cascade), so `n_source_bars` always counts
    1-minute rows and a bar's open/high/low come from real trades only. Only bars that are complete
    by `end` are returned: bars open in [start, end) *and* close at or before `end` (a 1d bar is left
    out when `end` is not a UTC midnight), so no bar still open at `end` is ever handed on.
    Rows at or after `end` are never read; rows before `start` only seed the fill of leading empty bars.
    Bars without trades are filled from the previous close (volume 0, `is_filled=True`).
    Rows of other symbols in `candles_1m` are ignored.
    """
    start, end = _utc(start), _utc(end)
    c = candles_1m
    if len(c) and (c["symbol"] != symbol).any():
        c = c[c["symbol"] == symbol]
    c = c.sort_values("ts", kind="stable")  # once, so each resample's stable sort is a no-op pass
    out: dict[str, pd.DataFrame] = {}
    for name in timeframes:
        tf = TIMEFRAMES[name]
        step = tf.bar.value
        last_close = end.value // step * step  # the latest bar boundary at or before `end`
        out[name] = resample_ohlcv(c, tf.rule, start, pd.Timestamp(last_close, tz="UTC"), symbol=symbol)
    return out


def _infer_bar(ts: pd.Series) -> pd.Timedelta:
    steps = pd.Series(pd.DatetimeIndex(ts).sort_values()).diff().dropna()
    steps = steps[steps > pd.Timedelta(0)]
    if steps.empty:
        raise ValueError("cannot infer the base bar from fewer than two distinct ts; pass base_bar")
    return steps.min()


def join_higher_timeframes(
    base: pd.DataFrame,
    higher: Mapping[str, pd.DataFrame],
    columns: list[str],
    *,
    base_bar: str | pd.Timedelta | None = None,
    max_age: pd.Timedelta | None = None,
    with_bar_ts: bool = False,
) -> pd.DataFrame:
    """`base` with `columns` of each higher timeframe added as `{column}_{name}` (e.g. `close_4h`).

    A base row (open `ts`, closing at `ts + base_bar`) gets the values of the latest bar of each
    higher timeframe whose close time (`ts_h + bar_h`) is <= the base row's close time: the last
    bar already closed when the base bar closes (`pd.merge_asof` on close times, backward, exact
    matches allowed). So the 1h row 11:00 (close 12:00) sees the 4h bar 08:00-12:00, and the 1h row
    10:00 (close 11:00) still sees 04:00-08:00; the 1h row 23:00 sees that day's 1d bar, earlier rows
    the previous day's. No value from a bar still open at the base close is ever used.

    Staleness: by default only a bar that closed within one higher bar of the base close counts,
    so a *missing* higher bar gives NaN rather than an older bar's value (rows at the start of a
    partition therefore need the previous partition's higher bars). `max_age` allows older bars:
    a bar qualifies when base_close - max_age <= its close <= base_close.

    `higher` maps timeframe names ("4h", "1d", or any pd.Timedelta string) to bar frames with `ts`
    (open time) and `columns`. When base and all higher frames have `symbol`, rows join per symbol.
    `base_bar` defaults to the smallest ts step in `base`. `with_bar_ts` also adds `ts_{name}`,
    the open time of the joined bar (for audits). Row order and index of `base` are kept.
    """
    bar = timeframe_bar(base_bar) if base_bar is not None else _infer_bar(base["ts"])
    by_symbol = "symbol" in base.columns and all("symbol" in h.columns for h in higher.values())

    left = pd.DataFrame({"_row": np.arange(len(base)), "_close": _close_ns(base["ts"], bar)})
    if by_symbol:
        left["symbol"] = base["symbol"].to_numpy()
    left = left.sort_values("_close", kind="stable")

    out = base.copy()
    for name, frame in higher.items():
        hbar = timeframe_bar(name)
        if hbar <= bar:
            raise ValueError(f"timeframe {name} ({hbar}) is not higher than the base bar ({bar})")
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            raise ValueError(f"higher timeframe {name} lacks columns {absent}")
        if frame.duplicated(["symbol", "ts"] if by_symbol else ["ts"]).any():
            raise ValueError(f"higher timeframe {name} has duplicate bars; the join would be ambiguous")
        right = frame[columns].copy()
        right.columns = [f"{c}_{name}" for c in columns]
        if with_bar_ts:
            right[f"ts_{name}"] = frame["ts"].to_numpy()
        right["_close"] = _close_ns(frame["ts"], hbar)
        if by_symbol:
            right["symbol"] = frame["symbol"].to_numpy()
        right = right.sort_values("_close", kind="stable")
        tolerance = (max_age if max_age is not None else hbar - pd.Timedelta(1, "ns")).value
        joined = pd.merge_asof(
            left, right, on="_close", by="symbol" if by_symbol else None,
            direction="backward", allow_exact_matches=True, tolerance=int(tolerance),
        )
        joined = joined.sort_values("_row", kind="stable")
        for col in right.columns:
            if col not in ("_close", "symbol"):
                out[col] = joined[col].to_numpy()
    return out


def _close_ns(ts: pd.Series, bar: pd.Timedelta) -> np.ndarray:
    """Close times as int64 epoch ns (merge_asof needs one dtype on both sides, whatever ts' unit)."""
    return pd.DatetimeIndex(ts).tz_convert("UTC").as_unit("ns").asi8 + bar.value
