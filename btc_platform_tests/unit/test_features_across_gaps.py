"""Features on the full bar grid: a missing (blocked) day is a hole that no window spans.

Real BTC minutes (January 2024) are resampled day by day, as `candles_1h` does; one day is then
left out, as a day blocked by its quality check is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btc_platform.features import compute_technical_features, resample_ohlcv
from btc_platform.features.grid import technical_features_on_grid
from btc_platform.features.technical import FEATURE_COLUMNS, RECURSIVE_COLUMNS, _memory_bars, lookback_bars, parse_timeframe
from btc_platform_tests.conftest import shared_data

START = pd.Timestamp("2024-01-01", tz="UTC")
DAYS = 31
HOLE = pd.Timestamp("2024-01-20", tz="UTC")  # the blocked day
AFTER = HOLE + pd.Timedelta("1D")  # the first bar after the hole


@pytest.fixture(scope="module")
def hourly() -> pd.DataFrame:
    raw = pd.read_csv(shared_data("candles_1m_btcusdt", "BTCUSDT-1m-2024-01.csv.gz"), header=None,
                      usecols=range(6), names=["ms", "open", "high", "low", "close", "volume"])
    minutes = raw.assign(ts=pd.to_datetime(raw.pop("ms"), unit="ms", utc=True), symbol="BTC-USD", source="binance")
    days = [resample_ohlcv(minutes, "1h", START + pd.Timedelta(days=d), START + pd.Timedelta(days=d + 1))
            for d in range(DAYS)]
    return pd.concat(days, ignore_index=True)


def without_hole(bars: pd.DataFrame) -> pd.DataFrame:
    return bars[(bars["ts"] < HOLE) | (bars["ts"] >= AFTER)].reset_index(drop=True)


def on_grid(bars: pd.DataFrame, **kw) -> pd.DataFrame:
    return technical_features_on_grid(bars, "1h", START, START + pd.Timedelta(days=DAYS), **kw)


def test_complete_data_gives_the_ta_equal_features_unchanged(hourly):
    got = on_grid(hourly)
    expected = compute_technical_features(hourly, "1h")
    pd.testing.assert_frame_equal(got[expected.columns.tolist()], expected, check_exact=True)
    assert not got["lookback_gap"].any() and not got["partial_bar"].any()


def test_the_first_bar_after_a_blocked_day_is_not_a_25_hour_return(hourly):
    holed = without_hole(hourly)
    got = on_grid(holed).set_index("ts")
    closes = hourly.set_index("ts")["close"]
    # Concatenated, the bars read as consecutive: the "1-hour" return spans 25 hours.
    naive = compute_technical_features(holed, "1h").set_index("ts")
    before = closes[HOLE - pd.Timedelta("1h")]
    assert naive.loc[AFTER, "log_return_1"] == pytest.approx(np.log(closes[AFTER] / before), rel=1e-12)
    # On the grid: no previous bar, no return; the next bar's return is the true 1-hour one.
    assert np.isnan(got.loc[AFTER, "log_return_1"])
    nxt = AFTER + pd.Timedelta("1h")
    assert got.loc[nxt, "log_return_1"] == pytest.approx(np.log(closes[nxt] / closes[AFTER]), rel=1e-12)
    # A day-long return reaching into the hole is unknown, not measured from the wrong bar.
    assert got.loc[AFTER: AFTER + pd.Timedelta("23h"), "log_return_1d"].isna().all()
    assert got.loc[AFTER + pd.Timedelta("2D"), "log_return_1d"] == pytest.approx(
        np.log(closes[AFTER + pd.Timedelta("2D")] / closes[AFTER + pd.Timedelta("1D")]), rel=1e-12)


def test_no_finite_window_spans_the_hole(hourly):
    got = on_grid(without_hole(hourly)).set_index("ts")
    tf = parse_timeframe("1h")
    after = got.loc[AFTER:]
    for col in FEATURE_COLUMNS:
        if col in RECURSIVE_COLUMNS:
            continue
        reach = _memory_bars(col, tf)
        if col == "mfi_14":
            reach -= 1  # ta counts the first bar's money flow as neutral, here as at a history's start
        if reach == 0:
            continue
        # Rows whose window reaches back into the hole are NaN (shift-based columns at the lagged
        # rows at least, window statistics at every such row).
        if col.startswith(("momentum_", "roc_", "log_return", "pct_return")):
            assert after.iloc[:min(reach, 24)][col].isna().all(), col
        else:
            assert after.iloc[:reach][col].isna().all(), col


def test_rows_after_the_hole_equal_a_fresh_start_and_rows_before_are_untouched(hourly):
    holed = without_hole(hourly)
    got = on_grid(holed)
    before = holed["ts"] < HOLE
    pd.testing.assert_frame_equal(got.loc[before, FEATURE_COLUMNS].reset_index(drop=True),
                                  compute_technical_features(holed[before], "1h")[FEATURE_COLUMNS],
                                  check_exact=True)
    # The recursions restart after the hole, as they would at the start of a history.
    fresh = compute_technical_features(holed[~before], "1h")
    pd.testing.assert_frame_equal(got.loc[~before, FEATURE_COLUMNS].reset_index(drop=True), fresh[FEATURE_COLUMNS],
                                  check_exact=True)


def test_rows_whose_lookback_holds_the_hole_are_flagged(hourly):
    got = on_grid(without_hole(hourly))
    reach = pd.Timedelta(hours=lookback_bars("1h"))
    flagged = (got["ts"] >= AFTER) & (got["ts"] <= HOLE + pd.Timedelta("23h") + reach)
    assert (got["lookback_gap"] == flagged).all()
    assert got.loc[got["ts"] < HOLE, "lookback_gap"].sum() == 0
    # With a short lookback (sma_20 only) the flag ends 20 bars after the hole.
    short = technical_features_on_grid(without_hole(hourly), "1h", START, START + pd.Timedelta(days=DAYS),
                                       columns=["sma_20"])
    assert short.loc[short["ts"] >= AFTER, "lookback_gap"].tolist()[:20] == [True] * 19 + [False]


def test_a_hole_at_the_start_of_the_grid_is_missing_too(hourly):
    late = hourly[hourly["ts"] >= START + pd.Timedelta("2D")]
    got = on_grid(late)
    assert got["lookback_gap"].iloc[0] and got["lookback_gap"].all()  # the lookback reaches the first 2 days
    # The same bars with the grid starting where they start: nothing is missing.
    assert not technical_features_on_grid(late, "1h", START + pd.Timedelta("2D"),
                                          START + pd.Timedelta(days=DAYS))["lookback_gap"].any()


def test_bad_bars_are_refused_by_name(hourly):
    twice = pd.concat([hourly.iloc[:30], hourly.iloc[29:30]], ignore_index=True)
    with pytest.raises(ValueError, match="2024-01-02 05:00:00.* more than once"):
        on_grid(twice)
    off = hourly.iloc[:30].copy()
    off.loc[3, "ts"] += pd.Timedelta("7min")
    with pytest.raises(ValueError, match="03:07:00.* not on the 0 days 01:00:00 grid"):
        on_grid(off)
    with pytest.raises(ValueError, match="not on the"):
        technical_features_on_grid(hourly, "1h", START + pd.Timedelta("1D"), START + pd.Timedelta("3D"))
