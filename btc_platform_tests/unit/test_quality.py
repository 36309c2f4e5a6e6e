"""Candle quality summary and blocking rules."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from btc_platform.monitoring import (
    BLOCKING_RULES,
    blocking_failures,
    summarize_candles,
    warnings,
)

T0 = pd.Timestamp("2024-03-01", tz="UTC")
HOUR = pd.Timedelta("1h")
WINDOW = dict(start=T0, end=T0 + 10 * HOUR, interval=HOUR, dataset="coinbase_candles_1h",
              partition="2024-03-01|BTC-USD")


def bars(hours: list[int]) -> pd.DataFrame:
    n = len(hours)
    return pd.DataFrame({
        "ts": [T0 + h * HOUR for h in hours],
        "symbol": "BTC-USD",
        "open": np.full(n, 100.0), "high": np.full(n, 101.0),
        "low": np.full(n, 99.0), "close": np.full(n, 100.5), "volume": np.full(n, 1.0),
        "source": "coinbase",
    })


def test_summary_counts_every_problem_exactly():
    df = bars([0, 1, 2, 6, 7, 7, 8, 9])      # bars 3, 4, 5 missing; bar 7 twice
    df.loc[6, "high"] = 100.0                 # bar 8: high < close
    df.loc[7, "volume"] = np.nan              # bar 9: a null
    s = summarize_candles(df, **WINDOW)

    assert s["expected_bars"] == 10 and s["present_bars"] == 7 and s["rows"] == 8
    assert s["coverage"] == pytest.approx(0.7)
    # Hourly bars: no hour is "no trade" (the default allows 10 minutes), so the gap is missing.
    assert s["gaps"] == [{"start": "2024-03-01T03:00:00+00:00", "end": "2024-03-01T06:00:00+00:00",
                          "bars": 3, "kind": "missing", "reason": "long"}]
    assert s["missing_bars"] == 3 and s["no_trade_bars"] == 0 and s["coverage_adjusted"] == pytest.approx(0.7)
    assert s["gap_count"] == 1 and s["largest_gap_bars"] == 3
    assert s["duplicates"] == 1
    assert s["ohlc_violations"] == 1
    assert s["null_counts"] == {"ts": 0, "symbol": 0, "open": 0, "high": 0, "low": 0, "close": 0,
                                "volume": 1, "source": 0}
    assert s["out_of_window"] == 0
    assert s["start"] == "2024-03-01T00:00:00+00:00" and s["end"] == "2024-03-01T10:00:00+00:00"
    assert s["dataset"] == "coinbase_candles_1h" and s["partition"] == "2024-03-01|BTC-USD"
    assert json.loads(json.dumps(s)) == s     # plain JSON, no numpy types

    failures = blocking_failures(s)
    assert len(failures) == 3
    assert any("duplicate" in f for f in failures) and any("OHLC" in f for f in failures)
    assert any("adjusted coverage 70.0% below 90%" in f for f in failures)
    assert len(blocking_failures(s, min_coverage=None)) == 2
    assert len(warnings(s)) == 1 and "70.0%" in warnings(s)[0]


def test_clean_partition_has_no_failures_or_warnings():
    s = summarize_candles(bars(list(range(10))), **WINDOW)
    assert s["coverage"] == 1.0 and s["gaps"] == [] and s["largest_gap_bars"] == 0
    assert blocking_failures(s) == [] and warnings(s) == []


def test_out_of_window_rows_block():
    s = summarize_candles(bars([*range(10), 10, -1]), **WINDOW)
    assert s["out_of_window"] == 2 and s["present_bars"] == 10
    assert blocking_failures(s) == [BLOCKING_RULES["out_of_window"].format(n=2)]


@pytest.mark.parametrize("mutate", [
    lambda df: df.__setitem__("low", 100.8),       # low above open
    lambda df: df.__setitem__("open", -1.0),       # non-positive price (and open < low)
    lambda df: df.__setitem__("volume", -0.5),     # negative volume
    lambda df: df.__setitem__("high", 98.0),       # low > high
])
def test_each_ohlc_rule_is_detected(mutate):
    df = bars([0, 1])
    one = df.iloc[[1]].copy()
    mutate(one)
    s = summarize_candles(pd.concat([df.iloc[[0]], one]), **WINDOW)
    assert s["ohlc_violations"] == 1


def test_leading_and_trailing_gaps_and_off_grid_rows():
    df = bars([2, 3, 4, 5, 6, 7])
    off_grid = bars([4]).assign(ts=T0 + pd.Timedelta("4h30min"))
    s = summarize_candles(pd.concat([df, off_grid], ignore_index=True), **WINDOW)
    assert [(g["start"][11:16], g["end"][11:16], g["bars"]) for g in s["gaps"]] == [
        ("00:00", "02:00", 2), ("08:00", "10:00", 2)]
    assert s["present_bars"] == 6 and s["coverage"] == pytest.approx(0.6)


def test_empty_frame_is_one_gap_over_the_window():
    s = summarize_candles(bars([]), **WINDOW)
    assert s["coverage"] == 0.0 and s["present_bars"] == 0 and s["rows"] == 0
    assert s["gaps"] == [{"start": "2024-03-01T00:00:00+00:00", "end": "2024-03-01T10:00:00+00:00",
                          "bars": 10, "kind": "missing", "reason": "long"}]
    assert len(blocking_failures(s)) == 1 and "coverage 0.0%" in blocking_failures(s)[0]
    assert blocking_failures({**s, "listed": False}) == []   # a product before its listing
    assert len(warnings(s)) == 1


def test_one_minute_day_with_microsecond_ts():
    ts = pd.date_range(T0, periods=1440, freq="1min").as_unit("us")
    df = bars([0] * 1440).assign(ts=ts).drop(index=range(100, 160))
    s = summarize_candles(df, start=T0, end=T0 + pd.Timedelta("1D"), interval=pd.Timedelta("1min"),
                          dataset="coinbase_candles_1m", partition="2024-03-01")
    assert s["expected_bars"] == 1440 and s["present_bars"] == 1380
    assert s["gaps"] == [{"start": "2024-03-01T01:40:00+00:00", "end": "2024-03-01T02:40:00+00:00",
                          "bars": 60, "kind": "missing", "reason": "long"}]
