"""Data-quality summary of a candle partition, plus the rules that block downstream use.

The summary is plain JSON (ints, floats, strings) so it can be written next to the data and
shown as Dagster metadata. All checks are vectorized: 1M rows take well under a second.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PRICE_COLUMNS = ["open", "high", "low", "close"]

# Summary keys that must be 0 for a partition to be used downstream, with the reason why.
BLOCKING_RULES: dict[str, str] = {
    "duplicates": "{n} duplicate (symbol, ts) rows: downstream joins would double count",
    "ohlc_violations": "{n} rows break OHLC sanity (low <= open, close <= high; prices > 0; volume >= 0)",
    "out_of_window": "{n} rows fall outside the partition window (or have no ts)",
}


def _ns(ts: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(ts).tz_convert("UTC").as_unit("ns").asi8


def _gaps(missing: np.ndarray, start_ns: int, step: int) -> list[dict]:
    """Runs of missing bars as [start, end) intervals in ISO form."""
    edges = np.diff(np.concatenate(([0], missing.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    first, last = _iso(start_ns + starts * step), _iso(start_ns + ends * step)
    return [{"start": s, "end": e, "bars": int(n)} for s, e, n in zip(first, last, ends - starts)]


def _iso(ns: np.ndarray) -> list[str]:
    # Vectorized, same text as Timestamp.isoformat() for whole-second UTC times.
    text = np.datetime_as_string(ns.astype("datetime64[ns]"), unit="s")
    return [f"{t}+00:00" for t in text.tolist()]


def _ohlc_violations(df: pd.DataFrame) -> int:
    o, h, l, c = (df[k].to_numpy(dtype="float64") for k in PRICE_COLUMNS)
    # Nulls compare False (fmin/fmax take the other value): they count in null_counts instead.
    bad = (l > np.fmin(o, c)) | (h < np.fmax(o, c)) | (l > h)
    bad |= (np.column_stack([o, h, l, c]) <= 0).any(axis=1)
    if "volume" in df:
        bad |= df["volume"].to_numpy(dtype="float64") < 0
    return int(bad.sum())


def summarize_candles(
    df: pd.DataFrame,
    *,
    start: pd.Timestamp,
    end: pd.Timestamp,
    interval: pd.Timedelta,
    dataset: str,
    partition: str,
) -> dict:
    """Coverage, gaps, duplicates, OHLC sanity, nulls and stray rows of one partition."""
    start, end = pd.Timestamp(start).tz_convert("UTC"), pd.Timestamp(end).tz_convert("UTC")
    step = pd.Timedelta(interval).value
    expected = max(0, -(-(end.value - start.value) // step))

    t = _ns(df["ts"]) if len(df) else np.array([], dtype=np.int64)
    has_ts = ~pd.isna(df["ts"]).to_numpy() if len(df) else np.array([], dtype=bool)
    in_win = has_ts & (t >= start.value) & (t < end.value)
    # Only timestamps on the bar grid count as present bars.
    offset = t[in_win] - start.value
    slots = offset[offset % step == 0] // step
    missing = np.ones(expected, dtype=bool)
    missing[slots] = False
    gaps = _gaps(missing, start.value, step)

    key = ["symbol", "ts"] if "symbol" in df else ["ts"]
    present = expected - int(missing.sum())
    return {
        "dataset": dataset,
        "partition": partition,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "expected_bars": int(expected),
        "present_bars": present,
        "coverage": float(present / expected) if expected else 0.0,
        "gaps": gaps,
        "gap_count": len(gaps),
        "largest_gap_bars": max((g["bars"] for g in gaps), default=0),
        # Surplus rows: a (symbol, ts) seen twice adds 1.
        "duplicates": int(df.duplicated(key).sum()) if len(df) else 0,
        "ohlc_violations": _ohlc_violations(df) if len(df) else 0,
        "null_counts": {str(k): int(v) for k, v in df.isna().sum().items()},
        "out_of_window": int((~in_win).sum()),
        "rows": int(len(df)),
    }


def blocking_failures(summary: dict) -> list[str]:
    """Messages for every blocking rule the summary breaks; empty means usable downstream."""
    return [msg.format(n=summary[k]) for k, msg in BLOCKING_RULES.items() if summary.get(k, 0) > 0]


def warnings(summary: dict, min_coverage: float = 0.95) -> list[str]:
    """Non-blocking findings: low coverage (gaps are real outages, filled downstream)."""
    out = []
    if summary["coverage"] < min_coverage:
        out.append(
            f"coverage {summary['coverage']:.1%} below {min_coverage:.0%}: "
            f"{summary['present_bars']}/{summary['expected_bars']} bars, "
            f"{summary['gap_count']} gaps, largest {summary['largest_gap_bars']} bars"
        )
    return out
