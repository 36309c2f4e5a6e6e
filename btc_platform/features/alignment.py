"""Point-in-time joins of macro, on-chain and sentiment data onto a bar grid (no look-ahead).

A bar is labelled by its open time `ts`; its features serve a decision taken at the bar's CLOSE, the
decision time `ts + bar`. Every vendor row (an "event") gets an availability time `available_at`
(table below); a bar takes, per column, the latest event with `available_at <= decision time`
(`pd.merge_asof`, direction "backward", exact matches allowed), forward-filled at most `max_age`
(older -> NaN), and `<column>_age_hours` = hours from the value's first availability to the decision
time (NaN where the value is NaN). Removing every event available after T never changes a bar whose
decision time is <= T: the tests check this "truncation law" for every output column.

Availability assumptions (`AVAILABILITY` holds the same table as data). Where a publication time is
uncertain we take the later, safe end and expose the knob:

| source | row | available at | why |
|---|---|---|---|
| FRED / ALFRED vintage row | `realtime_start` (a day) | `realtime_start + release_delay`, default 1 day: the END of that UTC day; superseded at `realtime_end + 1 day + release_delay` | FRED gives days only. US releases come out during the US day (CPI, jobs, GDP 08:30 ET = 12:30/13:30 UTC; H.15 rates ~16:15 ET) and FRED posts them the same afternoon; the UTC day end is after every posting up to 19:59 ET. Pass e.g. `pd.Timedelta(hours=13, minutes=30)` for an 08:30 ET release. |
| Alpha Vantage `TIME_SERIES_DAILY` (SPY, QQQ), `FX_DAILY`, `DIGITAL_CURRENCY_DAILY` | day d | d + 1 day (next 00:00 UTC) | US equities close 16:00 ET = 20:00/21:00 UTC; FX and crypto days end by 00:00 UTC. |
| Alpha Vantage `TREASURY_YIELD` | day d | end of the next US business day (federal holiday calendar) | AV serves FRED's DGS10/DGS2 (Treasury, H.15), which FRED dates the next business day. |
| Alpha Vantage `WTI`, `BRENT` | day d | end of the Wednesday after d's Monday-Sunday week (d's week Monday + 10 days) | EIA publishes its daily spot prices weekly, on Wednesdays. |
| CryptoQuant day row | `ts` = day open | `ts + 1 day + latency` | a day's value is final only at the end of the day (vendor docstring). |
| CryptoQuant hour row | `ts` = hour open | `ts + 1 hour + latency` | same, per hour; `latency` defaults to 0 (pass minutes for live parity). |
| Fear & Greed | `ts` = day D 00:00 | D + `delay`, default 1 day (D+1 00:00 UTC) | the vendor says D's index is published at D 00:00 UTC; whether it describes D-1 or D is not documented, so the default waits for the end of D (safe under both readings; up to 24 h staler). `delay=pd.Timedelta(0)` follows the vendor's word. |
| CoinAPI funding | `ts` = 8 h period start | `ts + 8 h` (period end) | the rate of a period is its `last` value, known at the period end (`market_structure`). |
| OHLCV bars (perp, CoinAPI spot) | `ts` = bar open | `ts + bar` | joined only at the SAME bar, both closed at the decision time (`market_structure`). |

FRED vintages, vectorized. The value of observation date d known at time t is the row of d whose
availability interval `[realtime_start + delay, realtime_end + 1 day + delay)` holds t
(= `fred.as_of(frame, t - delay)`). A level feature at t uses the latest observation date d*(t) with a
published (non-missing) value: d*(t) is the running maximum of dates over publication events sorted by
availability (one `merge_asof`), and its value as known at t is one `merge_asof` of the vintage rows by
date (`by=`). `cpi_yoy` = V_t(d*) / V_t(d* - 12 months) - 1 and `gdp_growth_qoq` =
V_t(d*) / V_t(d* - 3 months) - 1 take BOTH values from the vintage known at t (the base month as revised
by then, never as revised later). One simplification: an observation whose value is later revised to
missing (or deleted) gives NaN while it is the latest date, where the exact rule would fall back to the
previous date (FRED practically never does this). Age is measured from the first availability of d*
(revisions of d* do not make it look fresh). Series without vintages: `vintages_from_observations`
builds single-vintage rows from typical publication lags (`SYNTHETIC_RELEASE_LAGS`, approximations for
tests and demos, labelled "synthetic").

Staleness: `max_age` (7 days) applies to daily series; monthly and quarterly series publish once a
period, so they use `MAX_AGE_BY_FREQUENCY` (62 and 190 days: one late or skipped release tolerated, e.g.
the 2025 shutdown) unless overridden.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.tseries.holiday import USFederalHolidayCalendar

from btc_platform.vendors import cryptoquant as cq_vendor
from btc_platform.vendors import fred as fred_vendor

ONE_HOUR = pd.Timedelta(hours=1)
ONE_DAY = pd.Timedelta(days=1)
DEFAULT_MAX_AGE = pd.Timedelta(days=7)
FRED_RELEASE_DELAY = ONE_DAY
FEAR_GREED_DELAY = ONE_DAY
FUNDING_PERIOD = pd.Timedelta(hours=8)
MAX_AGE_BY_FREQUENCY = {"m": pd.Timedelta(days=62), "q": pd.Timedelta(days=190)}  # "d": max_age
_NAT = np.iinfo(np.int64).min  # NaT as int64 nanoseconds
_HOUR_NS = ONE_HOUR.value

AVAILABILITY: tuple[dict[str, str], ...] = (
    {"source": "fred", "row": "vintage row (realtime_start day)",
     "available_at": "realtime_start + release_delay (default 1 day: end of that UTC day)",
     "superseded_at": "realtime_end + 1 day + release_delay"},
    {"source": "alphavantage:TIME_SERIES_DAILY,FX_DAILY,DIGITAL_CURRENCY_DAILY", "row": "day d",
     "available_at": "d + 1 day (next 00:00 UTC)"},
    {"source": "alphavantage:TREASURY_YIELD", "row": "day d",
     "available_at": "end of the next US business day (federal holidays skipped)"},
    {"source": "alphavantage:WTI,BRENT", "row": "day d",
     "available_at": "end of the Wednesday after d's Monday-Sunday week (EIA weekly release)"},
    {"source": "cryptoquant", "row": "day/hour window open ts",
     "available_at": "ts + 1 day (day) / ts + 1 hour (hour), + latency (default 0)"},
    {"source": "feargreed", "row": "day D", "available_at": "D + delay (default 1 day: D+1 00:00 UTC)"},
    {"source": "coinapi:funding", "row": "8h period start ts", "available_at": "ts + 8 hours (period end)"},
    {"source": "ohlcv (perp, coinapi spot)", "row": "bar open ts", "available_at": "ts + bar (same bar only)"},
)


# -- time helpers --------------------------------------------------------------------------------

def to_utc_ns(values, name: str = "timestamps") -> np.ndarray:
    """Epoch nanoseconds (int64, NaT -> int64 min) of timezone-aware timestamps in any unit."""
    idx = pd.DatetimeIndex(values)
    if idx.tz is None:
        if len(idx) and idx.notna().any():
            raise ValueError(f"{name} must be timezone-aware (UTC)")
        idx = idx.tz_localize("UTC")
    return idx.tz_convert("UTC").as_unit("ns").asi8


def _from_ns(ns: np.ndarray, index=None) -> pd.Series:
    return pd.Series(pd.to_datetime(np.asarray(ns, dtype=np.int64), utc=True), index=index)


def _utc_series(values: pd.Series, name: str) -> pd.Series:
    return _from_ns(to_utc_ns(values, name), index=values.index)


def infer_bar(ts) -> pd.Timedelta:
    """The bar length: the most frequent spacing between distinct `ts` (ties: the shortest)."""
    ns = np.unique(to_utc_ns(ts, "ts"))
    ns = ns[ns != _NAT]
    d = np.diff(ns)
    if not len(d):
        raise ValueError("cannot infer the bar length from fewer than two distinct ts; pass bar=")
    vals, counts = np.unique(d, return_counts=True)
    return pd.Timedelta(int(vals[np.argmax(counts)]))


def decision_times(bars: pd.DataFrame, *, bar=None, decision_col: str | None = None) -> pd.Series:
    """When each bar's features are used: `bars[decision_col]` if given, else the bar close
    `ts + bar` (`bar` inferred from the ts spacing when None)."""
    if decision_col is not None:
        out = _utc_series(bars[decision_col], decision_col)
    else:
        step = pd.Timedelta(bar) if bar is not None else infer_bar(bars["ts"])
        if step <= pd.Timedelta(0):
            raise ValueError(f"bar must be positive, got {step}")
        out = _utc_series(bars["ts"], "ts") + step
    if out.isna().any():
        raise ValueError("bars have missing ts / decision times")
    return out


# -- availability rules --------------------------------------------------------------------------

def _days(values: pd.Series) -> pd.Series:
    return _utc_series(values, "ts").dt.floor("D")


def _next_us_business_day(days: pd.Series) -> pd.Series:
    """The next US business day after each UTC day (weekends and federal holidays skipped)."""
    if not len(days):
        return days
    d = days.dt.tz_localize(None).to_numpy("datetime64[D]")
    lo, hi = d.min() - np.timedelta64(10, "D"), d.max() + np.timedelta64(40, "D")
    hol = USFederalHolidayCalendar().holidays(start=pd.Timestamp(lo), end=pd.Timestamp(hi))
    # the first business day on or after d + 1
    nxt = np.busday_offset(d + np.timedelta64(1, "D"), 0, roll="forward", holidays=hol.to_numpy("datetime64[D]"))
    return pd.Series(pd.to_datetime(nxt).tz_localize("UTC"), index=days.index)


def _eia_weekly(days: pd.Series) -> pd.Series:
    """End of the Wednesday after the Monday-Sunday week holding the day."""
    monday = days - pd.to_timedelta(days.dt.weekday, unit="D")
    return monday + pd.Timedelta(days=10)


ALPHAVANTAGE_RULES: dict[str, Callable[[pd.Series], pd.Series]] = {
    "TIME_SERIES_DAILY": lambda d: d + ONE_DAY,
    "FX_DAILY": lambda d: d + ONE_DAY,
    "DIGITAL_CURRENCY_DAILY": lambda d: d + ONE_DAY,
    "TREASURY_YIELD": lambda d: _next_us_business_day(d) + ONE_DAY,
    "WTI": _eia_weekly,
    "BRENT": _eia_weekly,
}


def fred_available_at(vintages: pd.DataFrame, *, release_delay=FRED_RELEASE_DELAY) -> pd.Series:
    """When each FRED vintage row became known: `realtime_start + release_delay`."""
    return _utc_series(vintages["realtime_start"], "realtime_start") + pd.Timedelta(release_delay)


def fred_superseded_at(vintages: pd.DataFrame, *, release_delay=FRED_RELEASE_DELAY) -> pd.Series:
    """When each FRED vintage row stopped being current (NaT: still current)."""
    end = _utc_series(vintages["realtime_end"], "realtime_end")
    return end + ONE_DAY + pd.Timedelta(release_delay)


def alphavantage_available_at(frame: pd.DataFrame, *, delays: Mapping[str, pd.Timedelta] | None = None,
                              ) -> pd.Series:
    """When each Alpha Vantage daily row became known, by its `function` (table in the module doc);
    `delays` overrides a function's rule with `day + delay`. An unknown function raises."""
    days = _days(frame["ts"])
    out = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    delays = dict(delays or {})
    for function in frame["function"].dropna().unique():
        rows = (frame["function"] == function).to_numpy()
        at = np.flatnonzero(rows)
        if function in delays:
            out.iloc[at] = (days.iloc[at] + pd.Timedelta(delays[function])).to_numpy()
        elif function in ALPHAVANTAGE_RULES:
            out.iloc[at] = ALPHAVANTAGE_RULES[function](days.iloc[at]).to_numpy()
        else:
            raise ValueError(f"no availability rule for Alpha Vantage function {function!r}; pass delays=")
    if frame["function"].isna().any():
        raise ValueError("Alpha Vantage rows without a function")
    return out


def cryptoquant_available_at(frame: pd.DataFrame, *, latency=pd.Timedelta(0)) -> pd.Series:
    """When each CryptoQuant row is final: the end of its window (+ latency)."""
    step = frame["window"].map({w: pd.Timedelta(s) for w, s in cq_vendor.STEP.items()})
    if step.isna().any():
        bad = frame.loc[step.isna(), "window"].iloc[0]
        raise ValueError(f"unknown CryptoQuant window {bad!r}; expected one of {list(cq_vendor.STEP)}")
    return _utc_series(frame["ts"], "ts") + pd.to_timedelta(step) + pd.Timedelta(latency)


def feargreed_available_at(frame: pd.DataFrame, *, delay=FEAR_GREED_DELAY) -> pd.Series:
    """When each Fear & Greed value counts as known: its day + `delay` (default: the day's end)."""
    return _days(frame["ts"]) + pd.Timedelta(delay)


def funding_available_at(frame: pd.DataFrame, *, period=FUNDING_PERIOD) -> pd.Series:
    """When each CoinAPI funding rate is known: its period's end."""
    return _utc_series(frame["ts"], "ts") + pd.Timedelta(period)


def bar_close_times(frame: pd.DataFrame, *, bar) -> pd.Series:
    """OHLCV bars: the close `ts + bar`."""
    return _utc_series(frame["ts"], "ts") + pd.Timedelta(bar)


_RULES = {
    "fred": fred_available_at,
    "alphavantage": alphavantage_available_at,
    "cryptoquant": cryptoquant_available_at,
    "feargreed": feargreed_available_at,
    "coinapi_funding": funding_available_at,
    "ohlcv": bar_close_times,
}


def availability_times(frame: pd.DataFrame, source: str, **kwargs) -> pd.Series:
    """`available_at` of each row of a vendor's canonical frame: `source` is one of "fred",
    "alphavantage", "cryptoquant", "feargreed", "coinapi_funding", "ohlcv" (kwargs go to the rule)."""
    try:
        rule = _RULES[source]
    except KeyError:
        raise ValueError(f"unknown source {source!r}; expected one of {sorted(_RULES)}") from None
    return rule(frame, **kwargs)


# -- the as-of primitive ---------------------------------------------------------------------------

def asof_positions(left_times: np.ndarray, right_times: np.ndarray,
                   left_keys: Sequence | None = None, right_keys: Sequence | None = None) -> np.ndarray:
    """For each left time (int64 ns), the position of the last right row with time <= it (and equal
    keys), or -1. Among right rows with equal times the one given later wins. Vectorized
    (`pd.merge_asof`, backward); inputs need not be sorted."""
    left_times = np.asarray(left_times, dtype=np.int64)
    right_times = np.asarray(right_times, dtype=np.int64)
    n = len(left_times)
    out = np.full(n, -1, dtype=np.int64)
    valid = right_times != _NAT
    if n == 0 or not valid.any():
        return out
    left = pd.DataFrame({"_t": left_times, "_i": np.arange(n)})
    right = pd.DataFrame({"_a": right_times, "_pos": np.arange(len(right_times))})
    by = None
    if left_keys is not None:
        by = []
        for j, (lk, rk) in enumerate(zip(left_keys, right_keys)):
            left[f"_k{j}"] = np.asarray(lk)
            right[f"_k{j}"] = np.asarray(rk)
            by.append(f"_k{j}")
    right = right[valid]
    left = left.sort_values("_t", kind="stable")
    right = right.sort_values("_a", kind="stable")
    m = pd.merge_asof(left, right, left_on="_t", right_on="_a", by=by, direction="backward",
                      allow_exact_matches=True)
    out[m["_i"].to_numpy()] = m["_pos"].fillna(-1).to_numpy().astype(np.int64)
    return out


def _take(values: pd.Series, pos: np.ndarray, keep: np.ndarray):
    """values[pos] where keep (float64 for numbers, else object with None)."""
    safe = np.where(pos >= 0, pos, 0)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        arr = values.to_numpy(dtype="float64", na_value=np.nan)
        if not len(arr):
            return np.full(len(pos), np.nan)
        return np.where(keep, arr[safe], np.nan)
    arr = values.to_numpy(dtype=object)
    if not len(arr):
        return np.full(len(pos), None, dtype=object)
    return np.where(keep, arr[safe], None)


def _age_hours(t: np.ndarray, avail: np.ndarray, keep: np.ndarray) -> np.ndarray:
    return np.where(keep, (t - avail) / _HOUR_NS, np.nan)


def _fresh(t: np.ndarray, avail: np.ndarray, pos: np.ndarray, max_age) -> np.ndarray:
    ok = pos >= 0
    if max_age is not None:
        ok &= (t - avail) <= pd.Timedelta(max_age).value
    return ok


def asof_join(
    bars: pd.DataFrame,
    events: pd.DataFrame,
    *,
    value_cols: Sequence[str],
    available_col: str = "available_at",
    by: str | Sequence[str] | None = None,
    max_age=DEFAULT_MAX_AGE,
    prefix: str = "",
    bar=None,
    decision_col: str | None = None,
) -> pd.DataFrame:
    """`bars` plus, for each value column, `<prefix><col>`: the latest non-missing value whose
    `available_col` is at or before the bar's decision time (`decision_times`), NaN when none or older
    than `max_age` (None: no limit), and `<prefix><col>_age_hours`. `by` names columns both frames
    carry (e.g. "symbol") that must match. Equal availability times: the later observation (`ts`, when
    events have one) wins. Row order and index of `bars` are kept."""
    by_cols = [by] if isinstance(by, str) else list(by or [])
    t = to_utc_ns(decision_times(bars, bar=bar, decision_col=decision_col), "decision time")
    avail_all = to_utc_ns(events[available_col], available_col)
    if "ts" in events.columns and len(events):
        order = np.lexsort((to_utc_ns(events["ts"], "ts"), avail_all))
    else:
        order = np.argsort(avail_all, kind="stable")
    ev = events.iloc[order].reset_index(drop=True)
    avail_all = avail_all[order]
    out = bars.copy()
    for col in value_cols:
        keep_rows = ev[col].notna().to_numpy() & (avail_all != _NAT)
        sub = ev.loc[keep_rows].reset_index(drop=True)
        avail = avail_all[keep_rows]
        pos = asof_positions(
            t, avail,
            [bars[c].to_numpy() for c in by_cols] if by_cols else None,
            [sub[c].to_numpy() for c in by_cols] if by_cols else None,
        )
        a = np.where(pos >= 0, avail[np.maximum(pos, 0)] if len(avail) else _NAT, _NAT)
        keep = _fresh(t, a, pos, max_age)
        out[f"{prefix}{col}"] = _take(sub[col], pos, keep)
        out[f"{prefix}{col}_age_hours"] = _age_hours(t, a, keep)
    return out


# -- FRED vintages ----------------------------------------------------------------------------------

@dataclass
class _Vintages:
    """One FRED series prepared for point-in-time lookups (int64 ns everywhere)."""

    date: np.ndarray  # observation date per vintage row
    value: np.ndarray
    avail: np.ndarray  # row becomes current
    until: np.ndarray  # row stops being current (int64 max: still current)
    pub_avail: np.ndarray  # publication events (non-missing rows), sorted by availability
    pub_latest: np.ndarray  # latest observation date published by then (running max)
    first_dates: np.ndarray  # sorted distinct published dates
    first_known: np.ndarray  # their first availability


def _prepare_vintages(rows: pd.DataFrame, release_delay) -> _Vintages:
    rows = rows.sort_values(["date", "realtime_start"], kind="stable")
    date = to_utc_ns(rows["date"], "date")
    value = rows["value"].to_numpy(dtype="float64", na_value=np.nan)
    avail = to_utc_ns(fred_available_at(rows, release_delay=release_delay))
    until = to_utc_ns(fred_superseded_at(rows, release_delay=release_delay))
    until = np.where(until == _NAT, np.iinfo(np.int64).max, until)
    pub = ~np.isnan(value) & (avail != _NAT)
    order = np.lexsort((date[pub], avail[pub]))
    pub_avail, pub_date = avail[pub][order], date[pub][order]
    first = pd.Series(pub_avail).groupby(pub_date).min()
    return _Vintages(date, value, avail, until, pub_avail, np.maximum.accumulate(pub_date) if len(pub_date)
                     else pub_date, first.index.to_numpy(np.int64), first.to_numpy(np.int64))


def _latest_date(v: _Vintages, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """d*(t), the latest observation date published by t, and its first availability (NaT: none)."""
    pos = asof_positions(t, v.pub_avail)
    if not len(v.pub_avail):
        return np.full(len(t), _NAT), np.full(len(t), _NAT)
    d = np.where(pos >= 0, v.pub_latest[np.maximum(pos, 0)], _NAT)
    i = np.searchsorted(v.first_dates, d)
    i = np.minimum(i, len(v.first_dates) - 1)
    fk = np.where((pos >= 0) & (v.first_dates[i] == d), v.first_known[i], _NAT)
    return d, fk


def _value_at(v: _Vintages, t: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """The value of observation `dates[i]` as known at `t[i]` (NaN: unknown then)."""
    pos = asof_positions(t, v.avail, [dates], [v.date])
    ok = pos >= 0
    safe = np.maximum(pos, 0)
    ok &= t < v.until[safe] if len(v.until) else False
    return np.where(ok, v.value[safe] if len(v.value) else np.nan, np.nan)


def _shift_months(dates_ns: np.ndarray, months: int) -> np.ndarray:
    idx = pd.DatetimeIndex(pd.to_datetime(dates_ns, utc=True))
    return (idx - pd.DateOffset(months=months)).as_unit("ns").asi8


def _fred_frequency(series_id: str, rows: pd.DataFrame) -> str:
    info = fred_vendor.SERIES.get(series_id)
    if info is not None:
        return info.frequency
    days = np.diff(np.unique(to_utc_ns(rows["date"]))) / ONE_DAY.value
    gap = np.median(days) if len(days) else 1
    return "q" if gap >= 80 else "m" if gap >= 25 else "d"


def fred_point_in_time(
    times,
    vintages: pd.DataFrame,
    *,
    transform: str = "level",
    release_delay=FRED_RELEASE_DELAY,
    max_age=None,
) -> pd.DataFrame:
    """For each time (tz-aware), the value of one FRED series as known then: `value`, `obs_date`
    (the latest observation published by then), `age_hours` (since its first publication).
    `transform`: "level", "yoy" (vs 12 months earlier) or "qoq" (vs 3 months earlier), both
    observations taken from the vintage known at that time. `max_age` masks older values."""
    t = to_utc_ns(times, "times")
    v = _prepare_vintages(vintages, release_delay)
    d, fk = _latest_date(v, t)
    value = _value_at(v, t, d)
    if transform in ("yoy", "qoq"):
        base = _value_at(v, t, _shift_months(d, 12 if transform == "yoy" else 3))
        with np.errstate(divide="ignore", invalid="ignore"):
            value = value / base - 1.0
        value = np.where(np.isfinite(value), value, np.nan)
    elif transform != "level":
        raise ValueError(f"unknown transform {transform!r}")
    keep = (fk != _NAT) & ~np.isnan(value)
    if max_age is not None:
        keep &= (t - fk) <= pd.Timedelta(max_age).value
    return pd.DataFrame({
        "value": np.where(keep, value, np.nan),
        "obs_date": pd.to_datetime(np.where(d != _NAT, d, _NAT), utc=True),
        "age_hours": _age_hours(t, fk, keep),
    })


def _bday_lag(n: int):
    def lag(days: pd.Series) -> pd.Series:
        for _ in range(n):
            days = _next_us_business_day(days)
        return days
    return lag


def _weekly(offset_days: int):
    return lambda days: days - pd.to_timedelta(days.dt.weekday, unit="D") + pd.Timedelta(days=offset_days)


# Observation date -> first publication day, approximated (for data without ALFRED vintages).
SYNTHETIC_RELEASE_LAGS: dict[str, Callable[[pd.Series], pd.Series] | pd.Timedelta] = {
    "DGS10": _bday_lag(1),  # H.15 / Treasury: FRED dates it the next business day
    "DGS2": _bday_lag(1),
    "T10Y2Y": _bday_lag(1),
    "VIXCLS": _bday_lag(1),
    "SP500": _bday_lag(1),
    "DTWEXBGS": _weekly(7),  # H.10 weekly, Monday after the week
    "DCOILWTICO": _weekly(9),  # EIA weekly, Wednesday after the week
    "CPIAUCSL": pd.Timedelta(days=45),  # month M: mid M+1 (10th-15th)
    "UNRATE": pd.Timedelta(days=38),  # month M: first Friday of M+1
    "FEDFUNDS": pd.Timedelta(days=33),  # month M: first business days of M+1
    "M2SL": pd.Timedelta(days=60),  # month M: ~4th Tuesday of M+1
    "GDP": pd.Timedelta(days=125),  # quarter Q (labelled by its first day): advance estimate ~30 days after Q
}


def vintages_from_observations(observations: pd.DataFrame, series_id: str, *, publication_lag=None,
                               source: str = "synthetic") -> pd.DataFrame:
    """A FRED canonical frame with ONE vintage per observation (no revisions): `realtime_start` =
    the observation date + `publication_lag` (a Timedelta or a function of the date Series; default
    `SYNTHETIC_RELEASE_LAGS[series_id]`), still current. `observations` has `date` and `value`
    (naive dates are taken as UTC days)."""
    lag = publication_lag if publication_lag is not None else SYNTHETIC_RELEASE_LAGS.get(series_id)
    if lag is None:
        raise ValueError(f"no typical publication lag for {series_id!r}; pass publication_lag=")
    date = pd.to_datetime(observations["date"])
    date = date.dt.tz_localize("UTC") if date.dt.tz is None else date.dt.tz_convert("UTC")
    date = date.astype("datetime64[ns, UTC]").reset_index(drop=True)
    start = date + lag if isinstance(lag, pd.Timedelta) else lag(date)
    return pd.DataFrame({
        "series_id": series_id,
        "date": date,
        "value": pd.to_numeric(observations["value"], errors="coerce").astype("float64").to_numpy(),
        "realtime_start": pd.Series(start).dt.floor("D").astype("datetime64[ns, UTC]"),
        "realtime_end": pd.Series(pd.NaT, index=date.index, dtype="datetime64[ns, UTC]"),
        "source": source,
        "ingested_at": pd.Timestamp.now(tz="UTC"),
    })[fred_vendor.FRAME_COLUMNS]


# -- macro features -----------------------------------------------------------------------------------

MACRO_COLUMNS = [
    "sp500_close", "vix", "dxy", "us10y_yield", "us2y_yield", "t10y2y", "gold_price", "oil_price",
    "cpi_yoy", "gdp_growth_qoq", "unemployment_rate", "fed_funds",
]


@dataclass(frozen=True)
class MacroSource:
    vendor: str  # "fred" or "alphavantage"
    series: str  # FRED series_id or Alpha Vantage series name
    transform: str = "level"  # "level", "yoy", "qoq" (FRED only)

    @property
    def label(self) -> str:
        return f"{self.vendor}:{self.series}"


# Sources per column, in priority order: a bar takes the first source with a fresh value.
MACRO_SOURCES: dict[str, tuple[MacroSource, ...]] = {
    # The index itself (FRED, ~10 years of history). SPY (Alpha Vantage) is ~1/10 of the index and
    # would break the level: only with spy_proxy=True, and then labelled by its source.
    "sp500_close": (MacroSource("fred", "SP500"),),
    "vix": (MacroSource("fred", "VIXCLS"),),
    # NOT ICE's DXY (6 currencies, ~100): the Fed's nominal broad dollar index (26 currencies, ~120).
    "dxy": (MacroSource("fred", "DTWEXBGS"),),
    "us10y_yield": (MacroSource("fred", "DGS10"), MacroSource("alphavantage", "US10Y")),
    "us2y_yield": (MacroSource("fred", "DGS2"), MacroSource("alphavantage", "US2Y")),
    "t10y2y": (MacroSource("fred", "T10Y2Y"),),  # else us10y_yield - us2y_yield ("derived:...")
    "gold_price": (),
    "oil_price": (MacroSource("fred", "DCOILWTICO"), MacroSource("alphavantage", "WTI")),
    "cpi_yoy": (MacroSource("fred", "CPIAUCSL", "yoy"),),  # fraction: 0.031 = 3.1 %
    "gdp_growth_qoq": (MacroSource("fred", "GDP", "qoq"),),  # nominal GDP, fraction, not annualized
    "unemployment_rate": (MacroSource("fred", "UNRATE"),),  # percent
    "fed_funds": (MacroSource("fred", "FEDFUNDS"),),  # percent, monthly average
}

# Columns with no source at all stay NaN (never invented), for this reason:
MACRO_UNAVAILABLE = {
    "gold_price": "no gold series: FRED dropped LBMA gold (GOLDAMGBD228NLBM) in 2022 and neither "
                  "fred.SERIES nor alphavantage.SERIES carries one",
}
DERIVED_T10Y2Y = "derived:us10y_yield-us2y_yield"


def _unique_times(bars: pd.DataFrame, bar, decision_col) -> tuple[np.ndarray, np.ndarray]:
    t = to_utc_ns(decision_times(bars, bar=bar, decision_col=decision_col), "decision time")
    return np.unique(t, return_inverse=True)


def _frame_head(bars: pd.DataFrame) -> pd.DataFrame:
    cols = ["ts"] + (["symbol"] if "symbol" in bars.columns else [])
    return bars[cols].copy()


def macro_features(
    bars: pd.DataFrame,
    fred_vintages: pd.DataFrame | None = None,
    alphavantage_daily: pd.DataFrame | None = None,
    *,
    max_age=DEFAULT_MAX_AGE,
    max_age_by_frequency: Mapping[str, pd.Timedelta] | None = None,
    release_delay=FRED_RELEASE_DELAY,
    alphavantage_delays: Mapping[str, pd.Timedelta] | None = None,
    spy_proxy: bool = False,
    bar=None,
    decision_col: str | None = None,
) -> pd.DataFrame:
    """The schema's macro columns (`MACRO_COLUMNS`) for each bar as known at its decision time, plus
    `<col>_age_hours` and `<col>_source` (which vendor:series gave the value, None where NaN).

    `fred_vintages`: FRED canonical frame(s) (vintage rows, any series mix); `alphavantage_daily`: the
    Alpha Vantage long frame. Either may be None. Sources per column: `MACRO_SOURCES` (FRED first;
    Alpha Vantage fills bars where FRED has no fresh value). Output: `ts` (+ `symbol`), then the values,
    ages and sources, with the index and order of `bars`."""
    uniq, inv = _unique_times(bars, bar, decision_col)
    n = len(uniq)
    ages = {"d": pd.Timedelta(max_age) if max_age is not None else None, **MAX_AGE_BY_FREQUENCY,
            **dict(max_age_by_frequency or {})}
    fred_groups = {} if fred_vintages is None or fred_vintages.empty else dict(
        tuple(fred_vintages.groupby("series_id", sort=False)))
    av = None
    if alphavantage_daily is not None and not alphavantage_daily.empty:
        av = alphavantage_daily.assign(
            available_at=alphavantage_available_at(alphavantage_daily, delays=alphavantage_delays))

    def from_source(src: MacroSource):
        if src.vendor == "fred":
            rows = fred_groups.get(src.series)
            if rows is None:
                return None
            limit = ages.get(_fred_frequency(src.series, rows))
            got = fred_point_in_time(pd.to_datetime(uniq, utc=True), rows, transform=src.transform,
                                     release_delay=release_delay, max_age=limit)
            return got["value"].to_numpy(), got["age_hours"].to_numpy()
        if av is None:
            return None
        rows = av[av["series"] == src.series]
        if rows.empty:
            return None
        col = "value" if rows["value"].notna().any() else "close"
        ev = rows[["ts", "available_at", col]].rename(columns={col: "v"})
        j = asof_join(pd.DataFrame({"t": pd.to_datetime(uniq, utc=True)}), ev, value_cols=["v"],
                      max_age=ages["d"], decision_col="t")
        return j["v"].to_numpy(), j["v_age_hours"].to_numpy()

    values, age_cols, source_cols = {}, {}, {}
    for column in MACRO_COLUMNS:
        sources = MACRO_SOURCES[column]
        if column == "sp500_close" and spy_proxy:
            sources = sources + (MacroSource("alphavantage", "SPY"),)
        val = np.full(n, np.nan)
        age = np.full(n, np.nan)
        src = np.full(n, None, dtype=object)
        for s in sources:
            got = from_source(s)
            if got is None:
                continue
            fill = np.isnan(val) & ~np.isnan(got[0])
            val[fill], age[fill], src[fill] = got[0][fill], got[1][fill], s.label
        if column == "t10y2y":
            ten, two = values["us10y_yield"], values["us2y_yield"]
            fill = np.isnan(val) & ~np.isnan(ten) & ~np.isnan(two)
            val[fill] = (ten - two)[fill]
            age[fill] = np.fmax(age_cols["us10y_yield"], age_cols["us2y_yield"])[fill]
            src[fill] = DERIVED_T10Y2Y
        values[column], age_cols[column], source_cols[column] = val, age, src

    out = _frame_head(bars)
    for c in MACRO_COLUMNS:
        out[c] = values[c][inv]
    for c in MACRO_COLUMNS:
        out[f"{c}_age_hours"] = age_cols[c][inv]
    for c in MACRO_COLUMNS:
        out[f"{c}_source"] = source_cols[c][inv]
    return out


# -- on-chain features ---------------------------------------------------------------------------------

RESERVE_CHANGE = "exchange_reserve_change_1d"
ONCHAIN_COLUMNS = list(cq_vendor.METRICS) + [RESERVE_CHANGE]


def _with_reserve_change(long: pd.DataFrame) -> pd.DataFrame:
    """Adds `exchange_reserve_change_1d` rows: reserve at ts minus reserve at ts - 1 day, per window;
    known when the later row is (the earlier one is known before)."""
    res = long[long["metric"] == "exchange_reserve"]
    if res.empty:
        return long
    parts = []
    for _, rows in res.groupby("window", sort=False):
        prev = rows.assign(ts=rows["ts"] + ONE_DAY)[["ts", "value", "is_fallback"]]
        m = rows.merge(prev, on="ts", how="inner", suffixes=("", "_prev"))
        parts.append(m.assign(metric=RESERVE_CHANGE, value=m["value"] - m["value_prev"],
                              is_fallback=m["is_fallback"] | m["is_fallback_prev"])[long.columns])
    return pd.concat([long] + parts, ignore_index=True)


def onchain_features(
    bars: pd.DataFrame,
    cryptoquant_long: pd.DataFrame | None,
    *,
    max_age=DEFAULT_MAX_AGE,
    latency=pd.Timedelta(0),
    bar=None,
    decision_col: str | None = None,
) -> pd.DataFrame:
    """One column per CryptoQuant metric (`ONCHAIN_COLUMNS`, plus any other metric in the input) and
    `exchange_reserve_change_1d`, each as of the bar's decision time with `<metric>_age_hours`.

    Windows: per metric and bar the most recently available row wins, an hour row on ties, so a
    metric is hourly wherever hourly rows exist and daily (e.g. the fallback) elsewhere; flows of the
    two windows differ in scale (a day sums 24 hours), which `onchain_window` says: "hour" or "day"
    when every metric offered hourly took that window, "mixed" otherwise, None without data (metrics
    published daily only, like MVRV, count only when nothing else has a value).
    `onchain_is_fallback`: any value used came from a daily row served in place of hourly."""
    head = _frame_head(bars)
    t = to_utc_ns(decision_times(bars, bar=bar, decision_col=decision_col), "decision time")
    uniq, inv = np.unique(t, return_inverse=True)
    n = len(uniq)
    long = cryptoquant_long if cryptoquant_long is not None else cq_vendor.empty_frame()
    long = long[["ts", "metric", "value", "window", "is_fallback"]].copy()
    long["is_fallback"] = long["is_fallback"].fillna(False).astype(bool)
    long = long.drop_duplicates(["metric", "window", "ts"], keep="last")
    long = _with_reserve_change(long)
    long = long[long["value"].notna()]
    long = long.assign(available_at=to_utc_ns(cryptoquant_available_at(long, latency=latency)),
                       ts_ns=to_utc_ns(long["ts"]))
    metrics = ONCHAIN_COLUMNS + sorted(set(long["metric"]) - set(ONCHAIN_COLUMNS))
    values, ages = {}, {}
    window_code = np.zeros((len(metrics), n), dtype=np.int8)  # 0 none, 1 hour, 2 day
    hourly_capable = np.zeros(len(metrics), dtype=bool)
    fallback = np.zeros(n, dtype=bool)
    groups = dict(tuple(long.groupby(["metric", "window"], sort=False)))
    for k, metric in enumerate(metrics):
        spec = cq_vendor.METRICS.get(metric)
        hourly_capable[k] = ("hour" in spec.windows) if spec is not None else (metric, "hour") in groups
        if metric == RESERVE_CHANGE:
            hourly_capable[k] = True
        picks = []
        for w in ("hour", "day"):
            rows = groups.get((metric, w))
            if rows is None:
                picks.append((np.full(n, -1), np.full(n, _NAT), None))
                continue
            rows = rows.sort_values(["available_at", "ts_ns"], kind="stable").reset_index(drop=True)
            pos = asof_positions(uniq, rows["available_at"].to_numpy())
            a = np.where(pos >= 0, rows["available_at"].to_numpy()[np.maximum(pos, 0)], _NAT)
            picks.append((pos, a, rows))
        (ph, ah, rh), (pd_, ad, rd) = picks
        use_hour = (ph >= 0) & ((pd_ < 0) | (ah >= ad))
        use_day = ~use_hour & (pd_ >= 0)
        a = np.where(use_hour, ah, ad)
        keep = (use_hour | use_day) & _fresh(uniq, a, np.where(use_hour | use_day, 0, -1), max_age)
        val = np.full(n, np.nan)
        for use, pos, rows in ((use_hour, ph, rh), (use_day, pd_, rd)):
            if rows is None:
                continue
            sel = use & keep
            val[sel] = rows["value"].to_numpy("float64")[pos[sel]]
            fallback |= sel & rows["is_fallback"].to_numpy()[np.maximum(pos, 0)]
        values[metric] = val
        ages[metric] = _age_hours(uniq, a, keep)
        window_code[k] = np.where(keep & use_hour, 1, np.where(keep & use_day, 2, 0))

    capable = window_code[hourly_capable]
    any_hour = (capable == 1).any(axis=0)
    any_day = (capable == 2).any(axis=0)
    day_only_data = (window_code[~hourly_capable] == 2).any(axis=0)
    window = np.select([any_hour & any_day, any_hour, any_day | day_only_data], ["mixed", "hour", "day"],
                       default=None).astype(object)
    out = head
    for m in metrics:
        out[m] = values[m][inv]
    for m in metrics:
        out[f"{m}_age_hours"] = ages[m][inv]
    out["onchain_window"] = window[inv]
    out["onchain_is_fallback"] = fallback[inv]
    return out


# -- sentiment -------------------------------------------------------------------------------------------

def sentiment_features(
    bars: pd.DataFrame,
    fear_greed: pd.DataFrame | None,
    *,
    max_age=DEFAULT_MAX_AGE,
    delay=FEAR_GREED_DELAY,
    bar=None,
    decision_col: str | None = None,
) -> pd.DataFrame:
    """`fear_greed_index` (0..100, float) and `fear_greed_index_age_hours` as of each decision time;
    a day's index counts as known at its day + `delay` (default: the end of the day)."""
    head = _frame_head(bars)
    if fear_greed is None or fear_greed.empty:
        head["fear_greed_index"] = np.nan
        head["fear_greed_index_age_hours"] = np.nan
        return head
    ev = pd.DataFrame({"ts": fear_greed["ts"], "available_at": feargreed_available_at(fear_greed, delay=delay),
                       "fear_greed_index": pd.to_numeric(fear_greed["value"]).astype("float64")})
    j = asof_join(bars, ev, value_cols=["fear_greed_index"], max_age=max_age, bar=bar,
                  decision_col=decision_col)
    head["fear_greed_index"] = j["fear_greed_index"].to_numpy()
    head["fear_greed_index_age_hours"] = j["fear_greed_index_age_hours"].to_numpy()
    return head


__all__ = [
    "ALPHAVANTAGE_RULES", "AVAILABILITY", "DEFAULT_MAX_AGE", "FEAR_GREED_DELAY", "FRED_RELEASE_DELAY",
    "FUNDING_PERIOD", "MACRO_COLUMNS", "MACRO_SOURCES", "MACRO_UNAVAILABLE", "MAX_AGE_BY_FREQUENCY",
    "MacroSource", "ONCHAIN_COLUMNS", "SYNTHETIC_RELEASE_LAGS", "alphavantage_available_at", "asof_join",
    "asof_positions", "availability_times", "bar_close_times", "cryptoquant_available_at",
    "decision_times", "feargreed_available_at", "fred_available_at", "fred_point_in_time",
    "fred_superseded_at", "funding_available_at", "infer_bar", "macro_features", "onchain_features",
    "sentiment_features", "to_utc_ns", "vintages_from_observations",
]
