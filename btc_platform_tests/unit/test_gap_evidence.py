"""Missing data must never pass as a quiet market: a gap is excused as no-trade only on evidence (the
product's liquidity profile, a second vendor's volume), and the blocking threshold counts it honestly."""

import gzip

import numpy as np
import pandas as pd
import pytest

from btc_platform.monitoring import LiquidityProfile, blocking_failures, combine_profiles, liquidity_profile
from btc_platform.monitoring.quality import summarize_candles
from btc_platform.sandbox.market import GeneratedMarket
from btc_platform_tests.conftest import shared_data

MIN, DAY = pd.Timedelta("1min"), pd.Timedelta("1D")
NOW = pd.Timestamp("2030-01-01", tz="UTC")


def summary(df, day, **kw):
    return summarize_candles(df, start=day, end=day + DAY, interval=MIN, dataset="t", partition=str(day.date()),
                             now=NOW, **kw)


def real_days(first: str, n: int) -> dict[pd.Timestamp, pd.DataFrame]:
    path = shared_data("candles_1m_btcusdt", "BTCUSDT-1m-2024-01.csv.gz")
    with gzip.open(path, "rt") as f:
        raw = pd.read_csv(f, header=None, usecols=[0, 1, 2, 3, 4, 5])
    df = pd.DataFrame({"ts": pd.to_datetime(raw[0], unit="ms", utc=True),
                       **{c: raw[i].astype("float64") for i, c in enumerate(["open", "high", "low", "close", "volume"], 1)}})
    days = [pd.Timestamp(first, tz="UTC") + k * DAY for k in range(n)]
    return {d: df[(df["ts"] >= d) & (df["ts"] < d + DAY)].reset_index(drop=True) for d in days}


def punch(df, day, runs):
    minute = ((df["ts"] - day) // MIN).to_numpy()
    cut = np.zeros(len(df), bool)
    for a, n in runs:
        cut |= (minute >= a) & (minute < a + n)
    return df[~cut].reset_index(drop=True)


def test_the_profile_bounds_how_long_a_quiet_run_can_be():
    # Trades in 99.5% of minutes: one empty minute is plausible in a day, two in a row are not.
    assert LiquidityProfile(minutes=100_000, empty=500).max_quiet_bars(1440) == 1
    # Trades in every minute of a week: not even one (Jeffreys: p ~ 5e-5, 1440 p < 0.1).
    assert LiquidityProfile(minutes=7 * 1440, empty=0).max_quiet_bars(1440) == 0
    # A thin product (30% of minutes empty): up to 7 in a row (1440 x 0.3^8 < 0.1).
    assert LiquidityProfile(minutes=100_000, empty=30_000).max_quiet_bars(1440) == 7


def test_a_profile_counts_short_absences_and_leaves_outages_out():
    day = pd.Timestamp("2024-03-01", tz="UTC")
    ts = pd.date_range(day, periods=1440, freq="1min")
    keep = np.ones(1440, bool)
    keep[[10, 20, 21]] = False        # three no-trade candidates
    keep[600:700] = False             # an outage: no evidence about quiet minutes
    prof = liquidity_profile(pd.DataFrame({"ts": ts[keep], "volume": 1.0}), start=day, end=day + DAY)
    assert (prof.minutes, prof.empty) == (1340, 3)
    both = combine_profiles([prof, prof])
    assert (both.minutes, both.empty) == (2680, 6)


def test_holes_in_real_liquid_minutes_are_missing_not_quiet():
    days = real_days("2024-01-01", 8)
    *history, today = sorted(days)
    profile = combine_profiles(liquidity_profile(days[d], start=d, end=d + DAY) for d in history)
    runs = [(60 * h + 7, 1 + h % 10) for h in range(24)]                  # 24 holes of 1-10 minutes
    holed = punch(days[today], today, runs)

    s = summary(holed, today, profile=profile)
    assert [(g["bars"], g["kind"]) for g in s["gaps"]] == [(n, "missing") for _, n in runs]
    assert s["no_trade_bars"] == 0 and s["missing_bars"] == sum(n for _, n in runs)
    assert s["max_quiet_bars"] == 0 and s["liquidity"]["empty_minutes"] == 0
    # Today's rule called almost all of them quiet.
    old = summary(holed, today, quiet_chance=None)
    assert sum(g["kind"] == "no_trade" for g in old["gaps"]) >= 20


def test_the_blocking_threshold_counts_missing_minutes():
    days = real_days("2024-01-10", 2)
    before, today = sorted(days)
    profile = liquidity_profile(days[before], start=before, end=before + DAY)
    holed = punch(days[today], today, [(72 * k + 5, 10) for k in range(20)])    # 20 holes of 10 minutes
    s = summary(holed, today, profile=profile)
    assert s["coverage_adjusted"] == pytest.approx(1 - 200 / 1440)
    assert any("200 bars missing" in f for f in blocking_failures(s))
    assert blocking_failures(summary(holed, today, quiet_chance=None)) == []    # what passed before


def test_genuine_no_trade_minutes_of_a_thin_product_stay_quiet():
    market = GeneratedMarket(7)
    first = pd.Timestamp("2024-03-01", tz="UTC")
    history = combine_profiles(liquidity_profile(market.minutes("THIN-USD", d, d + DAY), start=d, end=d + DAY)
                               for d in (first - k * DAY for k in range(1, 8)))
    quiet = wrong = 0
    for d in (first + k * DAY for k in range(5)):
        s = summary(market.minutes("THIN-USD", d, d + DAY), d, profile=history)
        quiet += s["expected_bars"] - s["present_bars"]
        wrong += s["missing_bars"]
        assert blocking_failures(s) == []
    assert quiet > 1500 and wrong / quiet < 0.03


def test_the_other_vendors_minutes_reveal_a_hole_the_profile_would_excuse():
    market = GeneratedMarket(7)
    day = pd.Timestamp("2024-03-01", tz="UTC")
    full = market.minutes("THIN-USD", day, day + DAY)
    holed = full.drop(index=range(200, 202)).reset_index(drop=True)   # two traded minutes lost
    gap_start = full["ts"][200]
    thin = LiquidityProfile(minutes=100_000, empty=30_000)
    own = [g for g in summary(holed, day, profile=thin)["gaps"] if pd.Timestamp(g["start"]) <= gap_start
           < pd.Timestamp(g["end"])]
    assert own[0]["kind"] == "no_trade"                                  # plausible for a thin product
    ref = summary(holed, day, profile=thin, reference=full[["ts", "volume"]], reference_interval="1min")
    [g] = [g for g in ref["gaps"] if pd.Timestamp(g["start"]) <= gap_start < pd.Timestamp(g["end"])]
    assert (g["kind"], g["reason"]) == ("missing", "reference_volume")
