"""No-trade vs missing gaps, future timestamps, outliers, source shares, slow series, a real day."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from btc_platform.monitoring import (
    LiquidityProfile,
    blocking_failures,
    classify_gaps,
    source_shares,
    summarize_candles,
    summarize_series,
    warnings,
)
from btc_platform_tests.conftest import shared_data

T0 = pd.Timestamp("2024-03-01", tz="UTC")
MIN = pd.Timedelta("1min")
DAY = dict(start=T0, end=T0 + pd.Timedelta("1D"), interval=MIN, dataset="coinbase_candles_1m",
           partition="2024-03-01|BTC-USD", now=pd.Timestamp("2024-06-01", tz="UTC"))
# A product whose minutes are empty a quarter of the time: quiet runs up to 6 minutes are plausible.
THIN = LiquidityProfile(minutes=7 * 1440, empty=7 * 360)


def gbm_day(seed: int = 0, sigma: float = 5e-4, price: float = 60_000.0) -> pd.DataFrame:
    """A full day of 1-minute bars on a GBM path: each bar opens at the previous close."""
    rng = np.random.default_rng(seed)
    path = price * np.exp(np.concatenate([[0.0], np.cumsum(rng.normal(0, sigma, 1440))]))
    o, c = path[:-1], path[1:]
    wick = np.abs(rng.normal(0, sigma / 2, 1440))
    return pd.DataFrame({
        "ts": pd.date_range(T0, periods=1440, freq="1min"),
        "symbol": "BTC-USD",
        "open": o, "high": np.maximum(o, c) * (1 + wick), "low": np.minimum(o, c) * (1 - wick), "close": c,
        "volume": rng.lognormal(1.0, 0.5, 1440),
        "source": "coinbase",
    })


def drop(df: pd.DataFrame, first: int, bars: int) -> pd.DataFrame:
    return df.drop(index=range(first, first + bars))


def set_open(df: pd.DataFrame, i: int, price: float) -> None:
    """Bar i opens at `price` (its high and low widened to stay valid)."""
    df.loc[i, "open"] = price
    df.loc[i, "high"] = max(df.loc[i, "high"], price)
    df.loc[i, "low"] = min(df.loc[i, "low"], price)


def scale_from(df: pd.DataFrame, i: int, factor: float) -> None:
    """Every price from bar i on times `factor`: a jump between bar i - 1 and bar i."""
    df.loc[i:, ["open", "high", "low", "close"]] *= factor


def kinds(summary: dict) -> list[tuple[str, int, str, str]]:
    return [(g["start"][11:16], g["bars"], g["kind"], g["reason"]) for g in summary["gaps"]]


def test_short_continuous_gap_is_no_trade_long_jump_gap_is_missing():
    df = gbm_day()
    set_open(df, 103, df.loc[99, "close"])   # 3 minutes absent, price continuous across them
    scale_from(df, 645, 1.03)                # 45 minutes absent, price 3% higher after
    df = drop(drop(df, 100, 3), 600, 45)
    s = summarize_candles(df, **DAY, profile=THIN)

    assert kinds(s) == [("01:40", 3, "no_trade", "quiet"), ("10:00", 45, "missing", "long")]
    assert s["no_trade_bars"] == 3 and s["missing_bars"] == 45
    assert s["present_bars"] == 1440 - 48
    assert s["coverage"] == pytest.approx((1440 - 48) / 1440)
    assert s["coverage_adjusted"] == pytest.approx((1440 - 45) / 1440)
    assert s["missing_gap_count"] == 1 and s["largest_missing_gap_bars"] == 45
    assert blocking_failures(s) == []                     # 96.9% adjusted coverage passes 90%
    assert "adjusted coverage" in blocking_failures(s, min_coverage=0.99)[0]
    assert json.loads(json.dumps(s)) == s


def test_short_gap_with_a_price_jump_or_amid_heavy_trading_is_missing():
    df = gbm_day(1)
    scale_from(df, 305, 1.02)                  # 5 absent minutes, then 2% higher: data lost
    df.loc[790:810, "volume"] *= 20            # a burst of trading around a 2-minute hole
    df = drop(drop(df, 300, 5), 800, 2)
    assert kinds(summarize_candles(df, **DAY)) == [("05:00", 5, "missing", "price_jump"),
                                                   ("13:20", 2, "missing", "busy")]


def test_the_no_trade_limit_and_the_edges_of_the_window():
    df = drop(drop(gbm_day(2), 0, 2), 700, 11)  # 2 absent at 00:00 (one side only); 11 absent
    s = summarize_candles(df, **DAY, profile=THIN)
    assert kinds(s) == [("00:00", 2, "no_trade", "quiet"), ("11:40", 11, "missing", "long")]
    relaxed = summarize_candles(df, **DAY, max_no_trade_bars=15, quiet_chance=None)
    assert [g["kind"] for g in relaxed["gaps"]] == ["no_trade", "no_trade"]


def test_an_independent_volume_source_reveals_trades_in_a_gap():
    full = gbm_day(3)
    df = drop(full, 130, 2)                                      # quiet, continuous-looking 2-minute gap
    hourly = full.set_index("ts")["volume"].resample("1h").sum().reset_index()
    assert [g["kind"] for g in summarize_candles(df, **DAY, profile=THIN)["gaps"]] == ["no_trade"]

    # The same market's 1h volume counts trades in 02:10-02:12 that the 1m bars lack.
    s = summarize_candles(df, **DAY, reference=hourly, reference_interval="1h")
    assert kinds(s) == [("02:10", 2, "missing", "reference_volume")]
    # Hourly reference volume that the present bars account for cannot vouch for two quiet minutes
    # (a thin minute hides in its tolerance): the profile decides; minute bars that agree do vouch.
    agreeing = df.set_index("ts")["volume"].resample("1h").sum().reset_index()
    assert kinds(summarize_candles(df, **DAY, reference=agreeing, reference_interval="1h", profile=THIN)) == [
        ("02:10", 2, "no_trade", "quiet")]
    assert kinds(summarize_candles(df, **DAY, reference=agreeing, reference_interval="1h")) == [
        ("02:10", 2, "missing", "unlikely")]
    minutes = pd.concat([df[["ts", "volume"]], pd.DataFrame({"ts": full["ts"][130:132], "volume": 0.0})])
    assert kinds(summarize_candles(df, **DAY, reference=minutes, reference_interval="1min")) == [
        ("02:10", 2, "no_trade", "reference_quiet")]

    gaps = [{"start": "2024-03-01T02:10:00+00:00", "end": "2024-03-01T02:12:00+00:00", "bars": 2}]
    assert classify_gaps(df, gaps, interval="1min", reference=hourly, reference_interval="1h")[0]["kind"] == "missing"
    assert classify_gaps(df, gaps, interval="1min", max_no_trade_bars=1)[0]["reason"] == "long"


def test_future_timestamps_block_and_bars_not_yet_begun_are_not_expected():
    df = gbm_day(4)
    now = T0 + pd.Timedelta("12h")
    s = summarize_candles(df, **{**DAY, "now": now})
    assert s["future_timestamps"] == 719            # 12:01 .. 23:59
    assert s["expected_bars"] == 720 and s["present_bars"] == 720 and s["window_complete"] is False
    failures = blocking_failures(s)
    assert len(failures) == 1 and "719 rows are stamped after the time of the check" in failures[0]

    # A partition checked while its day is under way: the bars so far, complete.
    partial = summarize_candles(df[df["ts"] <= now + pd.Timedelta("30s")], **{**DAY, "now": now + pd.Timedelta("30s")})
    assert partial["expected_bars"] == 721 and partial["coverage"] == 1.0 and partial["future_timestamps"] == 0
    assert blocking_failures(partial) == []


def test_gbm_day_has_no_outliers_and_an_injected_bad_tick_is_found():
    df = gbm_day(5)
    clean = summarize_candles(df, **DAY)
    assert clean["outliers"] == 0 and clean["outlier_examples"] == [] and warnings(clean) == []

    df.loc[700, ["close", "high"]] *= 1.05            # one bad print, next bar back on the path
    s = summarize_candles(df, **DAY)
    assert s["outliers"] == 2                          # the spike up and the way back down
    assert {e["ts"] for e in s["outlier_examples"]} == {"2024-03-01T11:40:00+00:00", "2024-03-01T11:41:00+00:00"}
    assert s["outlier_examples"][0]["z"] > 50
    assert blocking_failures(s) == []                  # a warning, not a block
    [w] = warnings(s)
    assert "2 return outliers" in w and "11:40" in w
    assert summarize_candles(gbm_day(5), **DAY, outlier_z=3.0)["outliers"] > 0   # threshold is a knob


def test_source_shares_make_fallbacks_visible():
    df = gbm_day(6)
    df.loc[:143, "source"] = "coinapi"
    df.loc[144, "source"] = None
    s = summarize_candles(df, **DAY)
    assert s["source_shares"] == {"coinbase": pytest.approx(1295 / 1440, abs=1e-6),
                                  "coinapi": pytest.approx(144 / 1440, abs=1e-6),
                                  "<null>": pytest.approx(1 / 1440, abs=1e-6)}
    flagged = pd.DataFrame({"source": ["cryptoquant"] * 4, "is_fallback": [True, False, False, False]})
    assert source_shares(flagged) == {"cryptoquant": 1.0}
    assert source_shares(flagged.drop(columns="source")) == {}


def monthly(last: str = "2024-01-01") -> pd.DataFrame:
    dates = pd.date_range("2020-01-01", last, freq="MS", tz="UTC")
    value = np.linspace(250.0, 310.0, len(dates))
    value[10] = np.nan                                     # FRED's "." once
    return pd.DataFrame({"series_id": "CPIAUCSL", "date": dates, "value": value, "source": "fred"})


def test_a_monthly_fred_series_goes_stale_after_three_periods():
    df = monthly()
    kw = dict(ts_col="date", expected_frequency="MS", dataset="fred", partition="CPIAUCSL")
    fresh = summarize_series(df, **kw, now=pd.Timestamp("2024-02-20", tz="UTC"))
    assert fresh["last_ts"] == "2024-01-01T00:00:00+00:00" and fresh["first_ts"] == "2020-01-01T00:00:00+00:00"
    assert fresh["staleness_seconds"] == 50 * 86400 and fresh["stale"] is False
    assert fresh["max_staleness_seconds"] == 91 * 86400     # 2024-01-01 .. 2024-04-01
    assert fresh["periods_expected"] == 49 and fresh["periods_present"] == 48
    assert fresh["null_counts"]["value"] == 1 and fresh["null_share"] == {"value": pytest.approx(1 / 49, abs=1e-6)}
    assert fresh["duplicates"] == 0 and fresh["future_timestamps"] == 0
    assert fresh["source_shares"] == {"fred": 1.0}
    assert blocking_failures(fresh) == [] and warnings(fresh) == []
    assert json.loads(json.dumps(fresh)) == fresh

    stale = summarize_series(df, **kw, now=pd.Timestamp("2024-06-01", tz="UTC"))
    assert stale["stale"] is True and stale["staleness"].startswith("152 days")
    [w] = warnings(stale)
    assert w.startswith("stale: last observation 2024-01-01")
    assert blocking_failures(stale) == []                  # staleness warns, it does not block

    explicit = summarize_series(df, **kw, now=pd.Timestamp("2024-03-01", tz="UTC"), max_staleness="45D")
    assert explicit["stale"] is True and explicit["max_staleness_seconds"] == 45 * 86400


def test_a_trailing_missing_value_is_not_an_observation_and_errors_block():
    df = monthly("2024-03-01")
    df.loc[df.index[-1], "value"] = np.nan                 # March announced as "."
    s = summarize_series(df, ts_col="date", expected_frequency="MS", now=pd.Timestamp("2024-03-05", tz="UTC"))
    assert s["last_ts"] == "2024-02-01T00:00:00+00:00"

    bad = pd.concat([df, df.iloc[[3]], df.iloc[[-1]].assign(date=pd.Timestamp("2030-01-01", tz="UTC"))])
    s = summarize_series(bad, ts_col="date", expected_frequency="MS", key_cols=["series_id"],
                         now=pd.Timestamp("2024-03-05", tz="UTC"))
    assert s["duplicates"] == 1 and s["future_timestamps"] == 1
    assert len(blocking_failures(s)) == 2


def test_business_daily_series_is_fresh_over_a_weekend_and_an_empty_series_is_stale():
    days = pd.bdate_range("2024-01-01", "2024-03-01", tz="UTC")        # last: Friday 2024-03-01
    df = pd.DataFrame({"ts": days, "value": 4.0, "source": "alphavantage"})
    monday = summarize_series(df, expected_frequency="B", now=pd.Timestamp("2024-03-04 12:00", tz="UTC"))
    assert monday["stale"] is False and monday["period_coverage"] == 1.0
    assert summarize_series(df, expected_frequency="B", now=pd.Timestamp("2024-03-06 12:00", tz="UTC"))["stale"]

    empty = summarize_series(df.iloc[:0], expected_frequency="D", now=pd.Timestamp("2024-03-06", tz="UTC"))
    assert empty["stale"] is True and empty["last_ts"] is None and empty["rows"] == 0
    assert warnings(empty) == ["stale: no observation at all"]


def test_1m_summary_of_a_million_rows_stays_fast():
    import time
    n = 1_000_000
    rng = np.random.default_rng(0)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    ts = pd.date_range(T0, periods=n, freq="1min")
    df = pd.DataFrame({"ts": ts, "symbol": "X", "open": c, "high": c * 1.001, "low": c * 0.999, "close": c,
                       "volume": rng.lognormal(0, 0.8, n), "source": "coinbase"})[rng.random(n) > 0.01]
    t = time.perf_counter()
    s = summarize_candles(df, start=T0, end=ts[-1] + MIN, interval=MIN, dataset="x", partition="x", now=ts[-1] + MIN)
    assert time.perf_counter() - t < 5.0
    assert s["gap_count"] > 9000 and s["coverage_adjusted"] > 0.999


BINANCE_COLUMNS = ["open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
                   "trades", "taker_base", "taker_quote", "ignore"]


def test_a_real_binance_day_is_complete_and_clean():
    path = shared_data("candles_1m_btcusdt", "BTCUSDT-1m-2024-01.csv.gz")
    with gzip.open(path, "rt") as f:
        raw = pd.read_csv(f, header=None, names=BINANCE_COLUMNS)
    ts = pd.to_datetime(raw["open_time"], unit="ms", utc=True)
    day = pd.Timestamp("2024-01-02", tz="UTC")
    one = raw[(ts >= day) & (ts < day + pd.Timedelta("1D"))]
    df = pd.DataFrame({"ts": ts[one.index], "symbol": "BTCUSDT",
                       **{c: one[c].astype("float64") for c in ["open", "high", "low", "close", "volume"]},
                       "source": "binance"}).reset_index(drop=True)
    kw = dict(start=day, end=day + pd.Timedelta("1D"), interval=MIN, dataset="binance_candles_1m",
              partition="2024-01-02|BTCUSDT")
    s = summarize_candles(df, **kw)
    assert s["expected_bars"] == 1440 and s["coverage"] >= 0.999 and s["coverage_adjusted"] >= 0.999
    assert s["duplicates"] == 0 and s["ohlc_violations"] == 0 and s["future_timestamps"] == 0
    assert s["missing_bars"] == 0
    assert blocking_failures(s) == []
    assert s["source_shares"] == {"binance": 1.0}

    # An hour lost in transit is missing data, not a lull, and the day still passes the threshold.
    lost = summarize_candles(df.drop(index=range(600, 660)), **kw)
    assert [(g["bars"], g["kind"]) for g in lost["gaps"]] == [(60, "missing")]
    assert lost["coverage_adjusted"] == pytest.approx(1380 / 1440) and blocking_failures(lost) == []
