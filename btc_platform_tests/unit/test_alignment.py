"""Point-in-time alignment: availability rules, the as-of join, FRED vintages, macro/on-chain/sentiment
features, and the truncation law (events available after T never change a bar decided at or before T)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btc_platform.features import alignment as A
from btc_platform.features.alignment import (
    MACRO_COLUMNS,
    ONCHAIN_COLUMNS,
    asof_join,
    availability_times,
    decision_times,
    fred_point_in_time,
    macro_features,
    onchain_features,
    sentiment_features,
    vintages_from_observations,
)
from btc_platform.vendors import fred
from btc_platform_tests.conftest import shared_data

UTC = "UTC"
H = pd.Timedelta(hours=1)
DAY = pd.Timedelta(days=1)


def ts(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz=UTC)


def hourly_bars(start: str, end: str, symbol: str = "BTC-USD") -> pd.DataFrame:
    t = pd.date_range(start, end, freq="h", tz=UTC, inclusive="left")
    return pd.DataFrame({"ts": t, "symbol": symbol, "close": 100.0})


def bar_deciding_at(at: str) -> pd.DataFrame:
    """One 1h bar whose close (decision time) is `at`."""
    return pd.DataFrame({"ts": [ts(at) - H], "symbol": ["BTC-USD"], "close": [1.0]})


def vintage_frame(series_id: str, rows) -> pd.DataFrame:
    """rows: (date, value, realtime_start, realtime_end or None)."""
    df = pd.DataFrame(rows, columns=["date", "value", "realtime_start", "realtime_end"])
    out = pd.DataFrame({
        "series_id": series_id,
        "date": pd.to_datetime(df["date"], utc=True),
        "value": df["value"].astype("float64"),
        "realtime_start": pd.to_datetime(df["realtime_start"], utc=True),
        "realtime_end": pd.to_datetime(df["realtime_end"], utc=True),
        "source": "fred",
        "ingested_at": ts("2025-01-01"),
    })
    return out[fred.FRAME_COLUMNS]


# -- availability rules ----------------------------------------------------------------------------

def test_availability_rules_per_source():
    fr = vintage_frame("CPIAUCSL", [("2024-01-01", 1.0, "2024-02-13", "2024-02-19")])
    assert availability_times(fr, "fred").iloc[0] == ts("2024-02-14")  # end of the realtime_start day
    assert A.fred_superseded_at(fr).iloc[0] == ts("2024-02-21")  # the successor's availability
    assert availability_times(fr, "fred", release_delay=pd.Timedelta(hours=13, minutes=30)).iloc[0] == \
        ts("2024-02-13 13:30")

    days = pd.to_datetime(["2024-01-12", "2024-01-12", "2024-01-12", "2024-07-03", "2024-05-24"], utc=True)
    av = pd.DataFrame({"ts": days, "series": ["SPY", "US10Y", "WTI", "US10Y", "BTCUSD"],
                       "function": ["TIME_SERIES_DAILY", "TREASURY_YIELD", "WTI", "TREASURY_YIELD",
                                    "DIGITAL_CURRENCY_DAILY"]})
    got = availability_times(av, "alphavantage").tolist()
    assert got == [
        ts("2024-01-13"),  # Friday close -> Saturday 00:00 UTC
        ts("2024-01-17"),  # Friday yield: next business day is Tue 16 (MLK day Mon 15), end of it
        ts("2024-01-18"),  # EIA: the Wednesday after the week (Jan 17), end of it
        ts("2024-07-06"),  # Jul 4 holiday: next business day Jul 5, end of it
        ts("2024-05-25"),
    ]
    with pytest.raises(ValueError, match="no availability rule"):
        availability_times(av.assign(function="NEWS_SENTIMENT"), "alphavantage")

    cq = pd.DataFrame({"ts": [ts("2024-03-01"), ts("2024-03-01 10:00")], "window": ["day", "hour"]})
    assert availability_times(cq, "cryptoquant").tolist() == [ts("2024-03-02"), ts("2024-03-01 11:00")]
    fg = pd.DataFrame({"ts": [ts("2024-03-01")]})
    assert availability_times(fg, "feargreed").iloc[0] == ts("2024-03-02")
    assert availability_times(fg, "feargreed", delay=pd.Timedelta(0)).iloc[0] == ts("2024-03-01")
    fund = pd.DataFrame({"ts": [ts("2024-03-01 08:00")]})
    assert availability_times(fund, "coinapi_funding").iloc[0] == ts("2024-03-01 16:00")
    with pytest.raises(ValueError, match="unknown source"):
        availability_times(fund, "nope")


def test_decision_times_are_bar_closes():
    bars = hourly_bars("2024-01-01", "2024-01-02")
    assert (decision_times(bars) == bars["ts"] + H).all()
    assert (decision_times(bars, bar="4h") == bars["ts"] + pd.Timedelta(hours=4)).all()
    with pytest.raises(ValueError, match="pass bar"):
        decision_times(bars.iloc[:1])
    with pytest.raises(ValueError, match="timezone-aware"):
        decision_times(bars.assign(ts=bars["ts"].dt.tz_localize(None)))


# -- asof_join ---------------------------------------------------------------------------------------

def test_asof_join_exact_match_max_age_by_and_age():
    bars = pd.DataFrame({"ts": [ts("2024-01-01 00:00"), ts("2024-01-01 01:00"), ts("2024-01-09 02:00"),
                                ts("2024-01-01 01:00")],
                         "symbol": ["A", "A", "A", "B"]})
    events = pd.DataFrame({
        "ts": [ts("2023-12-31"), ts("2024-01-01"), ts("2024-01-01")],
        "symbol": ["A", "A", "B"],
        "available_at": [ts("2024-01-01 01:00"), ts("2024-01-01 02:00"), ts("2024-01-01 01:30")],
        "x": [1.0, 2.0, 3.0],
    })
    out = asof_join(bars, events, value_cols=["x"], by="symbol", bar=H, prefix="f_")
    # bar 0 decides at 01:00: the event available at exactly 01:00 counts
    assert out["f_x"].iloc[0] == 1.0 and out["f_x_age_hours"].iloc[0] == 0.0
    # bar 1 decides at 02:00: the 02:00 event
    assert out["f_x"].iloc[1] == 2.0 and out["f_x_age_hours"].iloc[1] == 0.0
    # bar 2 decides 2024-01-09 03:00: the value is 8 days 1 hour old -> NaN, age NaN
    assert np.isnan(out["f_x"].iloc[2]) and np.isnan(out["f_x_age_hours"].iloc[2])
    # symbol B at 02:00 sees its own event (01:30), not A's
    assert out["f_x"].iloc[3] == 3.0 and out["f_x_age_hours"].iloc[3] == 0.5
    unlimited = asof_join(bars, events, value_cols=["x"], by="symbol", bar=H, max_age=None)
    assert unlimited["x"].iloc[2] == 2.0 and unlimited["x_age_hours"].iloc[2] == 8 * 24 + 1
    # order and index of the bars are kept
    shuffled = bars.iloc[[3, 1, 0, 2]]
    again = asof_join(shuffled, events, value_cols=["x"], by="symbol", bar=H, prefix="f_")
    pd.testing.assert_frame_equal(again, out.loc[shuffled.index])


def test_asof_join_skips_missing_values_and_breaks_ties_by_observation():
    bars = pd.DataFrame({"ts": [ts("2024-01-02")]})
    events = pd.DataFrame({
        "ts": [ts("2023-12-31"), ts("2024-01-01"), ts("2023-12-30")],
        "available_at": [ts("2024-01-02"), ts("2024-01-02"), ts("2024-01-02 01:00")],
        "x": [1.0, 2.0, np.nan],
    })
    out = asof_join(bars, events, value_cols=["x"], bar=H)
    assert out["x"].iloc[0] == 2.0  # equal availability: the later observation; the NaN row is skipped


# -- FRED vintages -----------------------------------------------------------------------------------

def _cpi_with_revisions() -> tuple[pd.DataFrame, dict]:
    """Monthly CPI 2022-01..2024-01, first released on the 13th of the next month; on 2024-02-20 the
    Jan 2024 value is revised up 1 % and the Jan 2023 base down 1 %."""
    months = pd.date_range("2022-01-01", "2024-01-01", freq="MS", tz=UTC)
    v = {m: 100 * 1.004 ** k for k, m in enumerate(months)}
    rows = []
    for m in months:
        first = (m + pd.DateOffset(months=1)).replace(day=13)
        if m in (ts("2024-01-01"), ts("2023-01-01")):
            revised = v[m] * (1.01 if m.year == 2024 else 0.99)
            rows.append((m, v[m], first, ts("2024-02-19")))
            rows.append((m, revised, ts("2024-02-20"), None))
        else:
            rows.append((m, v[m], first, None))
    return vintage_frame("CPIAUCSL", rows), v


def test_cpi_vintages_first_release_then_revision_with_base_as_known_then():
    frame, v = _cpi_with_revisions()
    jan24, jan23, dec23, dec22 = ts("2024-01-01"), ts("2023-01-01"), ts("2023-12-01"), ts("2022-12-01")
    at = ["2022-02-10 00:00", "2024-02-13 23:00", "2024-02-14 00:00", "2024-02-20 23:00", "2024-02-21 00:00"]
    bars = pd.concat([bar_deciding_at(a) for a in at], ignore_index=True)
    out = macro_features(bars, frame, bar=H)
    yoy = out["cpi_yoy"].to_numpy()
    assert np.isnan(yoy[0]) and out["cpi_yoy_source"].iloc[0] is None  # nothing published yet
    assert np.isnan(out["cpi_yoy_age_hours"].iloc[0])
    assert yoy[1] == pytest.approx(v[dec23] / v[dec22] - 1)  # Jan 2024 is known only at the 14th 00:00
    assert yoy[2] == pytest.approx(v[jan24] / v[jan23] - 1)  # first releases of both months
    assert out["cpi_yoy_age_hours"].iloc[2] == 0.0
    assert yoy[3] == pytest.approx(v[jan24] / v[jan23] - 1)  # the revision counts from the day's end
    assert yoy[4] == pytest.approx(1.01 * v[jan24] / (0.99 * v[jan23]) - 1)  # both values revised
    assert out["cpi_yoy_age_hours"].iloc[4] == 7 * 24  # age counts from the first release of Jan 2024
    assert (out["cpi_yoy_source"].iloc[1:] == "fred:CPIAUCSL").all()


def test_level_vintage_before_and_after_revision():
    frame = vintage_frame("UNRATE", [
        ("2024-01-01", 3.7, "2024-02-02", "2024-03-07"),
        ("2024-01-01", 3.8, "2024-03-08", None),
        ("2024-02-01", 3.9, "2024-03-08", None),
    ])
    at = ["2024-02-02 12:00", "2024-02-03 00:00", "2024-03-08 12:00", "2024-03-09 00:00"]
    got = fred_point_in_time(pd.to_datetime(at, utc=True), frame)
    assert np.isnan(got["value"].iloc[0])
    assert got["value"].tolist()[1:] == [3.7, 3.7, 3.9]
    assert got["obs_date"].iloc[3] == ts("2024-02-01")
    # a bar asking for January's value directly after the revision sees 3.8
    prep = A._prepare_vintages(frame, A.FRED_RELEASE_DELAY)
    t = A.to_utc_ns(pd.to_datetime(["2024-03-08 23:00", "2024-03-09 00:00"], utc=True))
    d = A.to_utc_ns(pd.to_datetime(["2024-01-01", "2024-01-01"], utc=True))
    assert A._value_at(prep, t, d).tolist() == [3.7, 3.8]


def _reference(frame: pd.DataFrame, at: pd.Timestamp, transform: str, delay=A.FRED_RELEASE_DELAY):
    """Slow, obviously right: the whole snapshot known at `at` (fred.as_of)."""
    snap = fred.as_of(frame, at - delay)
    snap = snap[snap["value"].notna()].set_index("date")["value"]
    if snap.empty:
        return np.nan, np.nan
    d = snap.index.max()
    rows = frame[(frame["date"] == d) & frame["value"].notna()]
    age = (at - (rows["realtime_start"].min() + delay)) / H
    if transform == "level":
        return snap[d], age
    base = d - pd.DateOffset(months=12 if transform == "yoy" else 3)
    return (snap[d] / snap[base] - 1 if base in snap.index else np.nan), age


def _random_vintages(seed: int) -> pd.DataFrame:
    """Monthly series with 1-4 vintages per observation (tiling real-time periods), some first
    releases missing, releases out of date order."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in pd.date_range("2020-01-01", "2023-12-01", freq="MS", tz=UTC):
        start = m + pd.Timedelta(days=int(rng.integers(20, 60)))
        n = int(rng.integers(1, 5))
        for k in range(n):
            value = np.nan if (k == 0 and rng.random() < 0.1) else 100 + rng.normal() * 5
            end = start + pd.Timedelta(days=int(rng.integers(1, 200))) if k < n - 1 else None
            rows.append((m, value, start, end))
            if end is not None:
                start = end + DAY
    return vintage_frame("XSERIES", rows)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("transform", ["level", "yoy", "qoq"])
def test_vectorized_fred_matches_as_of_snapshots(seed, transform):
    frame = _random_vintages(seed)
    rng = np.random.default_rng(100 + seed)
    start, span = ts("2020-01-01").value, (ts("2025-01-01") - ts("2020-01-01")).value
    times = pd.to_datetime(np.sort(start + rng.integers(0, span, 150)), utc=True).floor("h")
    # include exact availability instants
    times = times.append(pd.DatetimeIndex(frame["realtime_start"].iloc[::7] + DAY))
    got = fred_point_in_time(times, frame, transform=transform)
    for i, at in enumerate(times):
        want, age = _reference(frame, at, transform)
        if np.isnan(want):
            assert np.isnan(got["value"].iloc[i]), at
        else:
            assert got["value"].iloc[i] == pytest.approx(want), at
            assert got["age_hours"].iloc[i] == pytest.approx(age), at


def test_daily_series_forward_fill_is_limited_and_aged():
    # DGS10 known for Jan 2..5 (next-day release), then a 12-day hole, then Jan 18
    days = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-18"]
    frame = vintages_from_observations(pd.DataFrame({"date": days, "value": [4.0, 4.1, 4.2, 4.3, 4.5]}), "DGS10")
    assert frame["realtime_start"].dt.strftime("%F").tolist() == [
        "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08", "2024-01-19"]  # Fri -> Mon
    at = ["2024-01-08 23:00", "2024-01-09 00:00", "2024-01-15 23:00", "2024-01-16 00:00", "2024-01-16 01:00",
          "2024-01-20 00:00"]
    out = macro_features(pd.concat([bar_deciding_at(a) for a in at], ignore_index=True), frame, bar=H)
    assert out["us10y_yield"].iloc[0] == 4.2 and out["us10y_yield_age_hours"].iloc[0] == 3 * 24 - 1
    assert out["us10y_yield"].iloc[1] == 4.3 and out["us10y_yield_age_hours"].iloc[1] == 0
    assert out["us10y_yield"].iloc[2] == 4.3 and out["us10y_yield_age_hours"].iloc[2] == 7 * 24 - 1
    assert out["us10y_yield"].iloc[3] == 4.3 and out["us10y_yield_age_hours"].iloc[3] == 7 * 24
    assert np.isnan(out["us10y_yield"].iloc[4]) and np.isnan(out["us10y_yield_age_hours"].iloc[4])
    assert out["us10y_yield_source"].iloc[4] is None
    assert out["us10y_yield"].iloc[5] == 4.5
    # t10y2y falls back to the difference only when both legs are there (us2y is absent here)
    assert out["t10y2y"].isna().all()


def test_alphavantage_fills_where_fred_is_missing_and_spy_is_opt_in():
    fr = vintages_from_observations(pd.DataFrame({"date": ["2024-01-02"], "value": [4.0]}), "DGS10")
    av = pd.DataFrame({
        "ts": pd.to_datetime(["2024-01-02", "2024-01-15", "2024-01-16", "2024-01-16", "2024-01-16"], utc=True),
        "series": ["US10Y", "US10Y", "US2Y", "WTI", "SPY"],
        "function": ["TREASURY_YIELD", "TREASURY_YIELD", "TREASURY_YIELD", "WTI", "TIME_SERIES_DAILY"],
        "value": [4.9, 4.1, 4.3, 72.0, 480.0],
    })
    bars = pd.concat([bar_deciding_at("2024-01-04"), bar_deciding_at("2024-01-18")], ignore_index=True)
    out = macro_features(bars, fr, av, bar=H)
    assert out["us10y_yield"].tolist() == [4.0, 4.1]  # FRED first; AV once FRED is stale
    assert out["us10y_yield_source"].tolist() == ["fred:DGS10", "alphavantage:US10Y"]
    assert out["us2y_yield"].iloc[1] == 4.3  # Tue 16 -> available end of Wed 17
    assert out["t10y2y"].iloc[1] == pytest.approx(4.1 - 4.3)
    assert out["t10y2y_source"].iloc[1] == A.DERIVED_T10Y2Y
    assert np.isnan(out["oil_price"].iloc[1])  # EIA's weekly release: the 16th is known on the 25th
    assert out["sp500_close"].isna().all()
    with_spy = macro_features(bars, fr, av, bar=H, spy_proxy=True)
    assert with_spy["sp500_close"].iloc[1] == 480.0
    assert with_spy["sp500_close_source"].iloc[1] == "alphavantage:SPY"


def test_macro_schema_without_any_input():
    bars = hourly_bars("2024-01-01", "2024-01-02")
    out = macro_features(bars, None, None)
    assert list(out.columns) == (["ts", "symbol"] + MACRO_COLUMNS + [f"{c}_age_hours" for c in MACRO_COLUMNS]
                                 + [f"{c}_source" for c in MACRO_COLUMNS])
    assert out[MACRO_COLUMNS].isna().all().all()
    assert "gold_price" in A.MACRO_UNAVAILABLE and A.MACRO_SOURCES["gold_price"] == ()


# -- truncation law ------------------------------------------------------------------------------------

def truncate_vintages(frame: pd.DataFrame, cut: pd.Timestamp, delay=A.FRED_RELEASE_DELAY) -> pd.DataFrame:
    """The vintages as a fetch at `cut` would see them: later rows absent, later ends still open."""
    f = frame[A.fred_available_at(frame, release_delay=delay) <= cut].copy()
    ended_later = A.fred_superseded_at(f, release_delay=delay) > cut
    f.loc[ended_later, "realtime_end"] = pd.NaT
    return f


def _macro_inputs():
    cpi, _ = _cpi_with_revisions()
    gdp_rows = []
    for k, q in enumerate(pd.date_range("2021-01-01", "2023-10-01", freq="QS", tz=UTC)):
        adv = q + pd.Timedelta(days=120)
        gdp_rows += [(q, 20000 + 300 * k, adv, adv + pd.Timedelta(days=29)),
                     (q, 20010 + 300 * k, adv + pd.Timedelta(days=30), None)]
    rng = np.random.default_rng(7)
    days = pd.bdate_range("2023-06-01", "2024-03-01", tz=UTC)
    daily = pd.DataFrame({"date": days, "value": 4 + rng.normal(size=len(days)).cumsum() * 0.05})
    daily.loc[rng.random(len(days)) < 0.05, "value"] = np.nan
    fr = pd.concat([
        cpi, vintage_frame("GDP", gdp_rows),
        vintages_from_observations(daily.iloc[: len(days) // 2], "DGS10"),
        vintages_from_observations(daily, "DGS2"),
        vintages_from_observations(daily.assign(value=daily["value"] * 1000), "SP500"),
    ], ignore_index=True)
    av = pd.DataFrame({"ts": days, "series": "US10Y", "function": "TREASURY_YIELD",
                       "value": daily["value"] + 0.01})
    av = pd.concat([av, av.assign(series="WTI", function="WTI", value=70.0)], ignore_index=True)
    return fr, av


def _cuts():
    return [ts("2023-07-03 05:00"), ts("2023-12-29 00:00"), ts("2024-02-14 00:00"), ts("2024-02-20 13:00"),
            ts("2024-02-21 00:00")]


def _assert_unchanged_until(full: pd.DataFrame, trunc: pd.DataFrame, decided: pd.Series, cut) -> None:
    early = (decided <= cut).to_numpy()
    assert early.any()
    pd.testing.assert_frame_equal(trunc.loc[early], full.loc[early])


def test_truncation_law_macro_every_column():
    fr, av = _macro_inputs()
    bars = hourly_bars("2023-06-01", "2024-03-01")
    full = macro_features(bars, fr, av, bar=H)
    decided = decision_times(bars, bar=H)
    for cut in _cuts():
        av_cut = av[A.alphavantage_available_at(av) <= cut]
        trunc = macro_features(bars, truncate_vintages(fr, cut), av_cut, bar=H)
        _assert_unchanged_until(full, trunc, decided, cut)
    # the inputs exercise every populated column
    assert full[["sp500_close", "us10y_yield", "us2y_yield", "t10y2y", "cpi_yoy", "gdp_growth_qoq",
                 "oil_price"]].notna().any().all()


def _cq_long() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    days = pd.date_range("2024-01-01", "2024-01-20", freq="D", tz=UTC)
    hours = pd.date_range("2024-01-10", "2024-01-15", freq="h", tz=UTC, inclusive="left")
    parts = []
    for metric in ["exchange_netflow_total", "exchange_reserve", "exchange_whale_ratio", "mvrv"]:
        parts.append(pd.DataFrame({"ts": days, "metric": metric, "value": rng.normal(size=len(days)),
                                   "window": "day", "is_fallback": metric != "mvrv"}))
        if metric != "mvrv":
            parts.append(pd.DataFrame({"ts": hours, "metric": metric, "value": rng.normal(size=len(hours)),
                                       "window": "hour", "is_fallback": False}))
    long = pd.concat(parts, ignore_index=True)
    long["source"], long["ingested_at"] = "cryptoquant", ts("2024-02-01")
    return long


def test_onchain_prefers_recent_hourly_and_reports_provenance():
    long = _cq_long()
    at = ["2024-01-05 12:00", "2024-01-12 12:00", "2024-01-16 00:00", "2024-01-16 03:00"]
    out = onchain_features(pd.concat([bar_deciding_at(a) for a in at], ignore_index=True), long, bar=H)
    assert list(out.columns[2:2 + len(ONCHAIN_COLUMNS)]) == ONCHAIN_COLUMNS
    netflow = long[long["metric"] == "exchange_netflow_total"].set_index(["window", "ts"])["value"]
    # day-only period: the value of Jan 4 (final at Jan 5 00:00), 12 h old; fallback rows
    assert out["exchange_netflow_total"].iloc[0] == netflow[("day", ts("2024-01-04"))]
    assert out["exchange_netflow_total_age_hours"].iloc[0] == 12
    assert out["onchain_window"].iloc[0] == "day" and out["onchain_is_fallback"].iloc[0]
    # hourly period: the 11:00 hour, final at 12:00
    assert out["exchange_netflow_total"].iloc[1] == netflow[("hour", ts("2024-01-12 11:00"))]
    assert out["onchain_window"].iloc[1] == "hour" and not out["onchain_is_fallback"].iloc[1]
    assert out["mvrv"].notna().iloc[1]  # daily-only metric, does not make the window "mixed"
    # at Jan 16 00:00 the last hour (Jan 14 23:00, final Jan 15 00:00) and the Jan 15 day row (final
    # Jan 16 00:00): the day row is newer
    assert out["exchange_netflow_total"].iloc[2] == netflow[("day", ts("2024-01-15"))]
    assert out["onchain_window"].iloc[2] == "day"
    # reserve change over one day, within the window
    reserve = long[long["metric"] == "exchange_reserve"].set_index(["window", "ts"])["value"]
    assert out["exchange_reserve_change_1d"].iloc[1] == pytest.approx(
        reserve[("hour", ts("2024-01-12 11:00"))] - reserve[("hour", ts("2024-01-11 11:00"))])
    assert out["exchange_reserve_change_1d"].iloc[3] == pytest.approx(
        reserve[("day", ts("2024-01-15"))] - reserve[("day", ts("2024-01-14"))])
    # metrics absent from the input are present and NaN
    assert out["miner_reserve"].isna().all() and out["miner_reserve_age_hours"].isna().all()


def test_onchain_without_data_and_max_age():
    bars = hourly_bars("2024-01-01", "2024-01-02")
    empty = onchain_features(bars, None, bar=H)
    assert empty[ONCHAIN_COLUMNS].isna().all().all()
    assert empty["onchain_window"].isna().all() and not empty["onchain_is_fallback"].any()
    long = _cq_long()
    late = onchain_features(bar_deciding_at("2024-01-29 00:00"), long, bar=H)  # last day row final Jan 21
    assert np.isnan(late["exchange_netflow_total"].iloc[0])
    ok = onchain_features(bar_deciding_at("2024-01-28 00:00"), long, bar=H)
    assert ok["exchange_netflow_total_age_hours"].iloc[0] == 7 * 24


def test_truncation_law_onchain_and_sentiment():
    long = _cq_long()
    fg = pd.DataFrame({"ts": pd.date_range("2024-01-01", "2024-01-20", freq="D", tz=UTC)})
    fg["value"] = pd.array(np.arange(len(fg)) % 100, dtype="Int64")
    fg = fg.drop(index=[5, 6, 7, 8, 9, 10, 11, 12, 13])  # a missing stretch
    bars = hourly_bars("2024-01-01", "2024-01-25")
    decided = decision_times(bars, bar=H)
    full_cq = onchain_features(bars, long, bar=H)
    full_fg = sentiment_features(bars, fg, bar=H)
    for cut in [ts("2024-01-05 00:00"), ts("2024-01-10 07:00"), ts("2024-01-14 23:00"), ts("2024-01-16 00:00"),
                ts("2024-01-19 12:00")]:
        long_cut = long[A.cryptoquant_available_at(long) <= cut]
        _assert_unchanged_until(full_cq, onchain_features(bars, long_cut, bar=H), decided, cut)
        fg_cut = fg[A.feargreed_available_at(fg) <= cut]
        _assert_unchanged_until(full_fg, sentiment_features(bars, fg_cut, bar=H), decided, cut)


# -- sentiment ---------------------------------------------------------------------------------------------

def test_fear_greed_day_known_at_its_end_and_stale_gap():
    fg = pd.DataFrame({"ts": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-20"], utc=True),
                       "value": pd.array([20, 80, 50], dtype="Int64")})
    at = ["2024-01-02 00:00", "2024-01-02 23:00", "2024-01-03 00:00", "2024-01-10 00:00", "2024-01-10 01:00"]
    out = sentiment_features(pd.concat([bar_deciding_at(a) for a in at], ignore_index=True), fg, bar=H)
    assert out["fear_greed_index"].tolist()[:4] == [20.0, 20.0, 80.0, 80.0]
    assert out["fear_greed_index_age_hours"].tolist()[:4] == [0.0, 23.0, 0.0, 7 * 24.0]
    assert np.isnan(out["fear_greed_index"].iloc[4])
    vendor_time = sentiment_features(bar_deciding_at("2024-01-02 00:00"), fg, bar=H, delay=pd.Timedelta(0))
    assert vendor_time["fear_greed_index"].iloc[0] == 80.0


def test_fear_greed_real_history():
    path = shared_data("fear_greed", "fear_greed_index_alternative_me.csv")
    raw = pd.read_csv(path)
    fg = pd.DataFrame({"ts": pd.to_datetime(raw["Date"], utc=True), "value": raw["fng_value"].astype("Int64")})
    bars = hourly_bars("2018-02-01", "2025-01-01")
    out = sentiment_features(bars, fg, bar=H)
    by_day = fg.set_index("ts")["value"]
    sample = out.iloc[::997]
    for _, row in sample.iterrows():
        decided = row["ts"] + H
        known = by_day[by_day.index + DAY <= decided]
        if len(known) and decided - (known.index[-1] + DAY) <= pd.Timedelta(days=7):
            assert row["fear_greed_index"] == known.iloc[-1]
            assert row["fear_greed_index_age_hours"] == (decided - known.index[-1] - DAY) / H
        else:
            assert np.isnan(row["fear_greed_index"])
    assert out["fear_greed_index"].notna().mean() > 0.95


# -- real FRED series with synthetic publication lags ----------------------------------------------------

FRED_FILES = ["SP500", "VIXCLS", "DTWEXBGS", "DGS10", "DGS2", "T10Y2Y", "DCOILWTICO", "CPIAUCSL", "GDP",
              "UNRATE", "FEDFUNDS"]


def _real_fred() -> pd.DataFrame:
    frames = []
    for s in FRED_FILES:
        obs = pd.read_csv(shared_data("fred", f"{s}.csv"))
        frames.append(vintages_from_observations(obs, s))
    return pd.concat(frames, ignore_index=True)


def test_real_fred_series_realistic_run():
    fr = _real_fred()
    bars = hourly_bars("2019-01-01", "2025-01-01")
    out = macro_features(bars, fr, bar=H)
    assert len(out) == len(bars)
    filled = out[[c for c in MACRO_COLUMNS if c != "gold_price"]].notna().mean()
    assert (filled > 0.97).all(), filled.to_dict()
    assert out["gold_price"].isna().all()
    ages = out[[f"{c}_age_hours" for c in MACRO_COLUMNS]]
    assert (ages.fillna(0) >= 0).all().all()
    # May 2022 CPI (released mid-June, synthetic lag 45 days): the last one known on 2022-07-01
    cpi = pd.read_csv(shared_data("fred", "CPIAUCSL.csv"), parse_dates=["date"]).set_index("date")["value"]
    row = out[out["ts"] == ts("2022-07-01")].iloc[0]
    assert row["cpi_yoy"] == pytest.approx(cpi["2022-05-01"] / cpi["2021-05-01"] - 1)
    assert 0.08 < row["cpi_yoy"] < 0.09
    gdp = pd.read_csv(shared_data("fred", "GDP.csv"), parse_dates=["date"]).set_index("date")["value"]
    # Q1 2022 advance ~ end of April (synthetic: Jan 1 + 125 days = May 6): known on 2022-07-01
    assert row["gdp_growth_qoq"] == pytest.approx(gdp["2022-01-01"] / gdp["2021-10-01"] - 1)
    # each value was first published at or before the decision time: compare with snapshots
    sample = out.iloc[::1733]
    for col, sid, transform in [("cpi_yoy", "CPIAUCSL", "yoy"), ("gdp_growth_qoq", "GDP", "qoq"),
                                ("unemployment_rate", "UNRATE", "level"), ("vix", "VIXCLS", "level")]:
        frame = fr[fr["series_id"] == sid]
        for i, r in sample.iterrows():
            want, age = _reference(frame, r["ts"] + H, transform)
            assert r[col] == pytest.approx(want), (col, r["ts"])
            assert r[f"{col}_age_hours"] == pytest.approx(age), (col, r["ts"])
