"""Timeframes: resampling 1-minute candles into 5m..1d, and the multi-timeframe (MTF) as-of join."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from btc_platform.features.resample import resample_ohlcv
from btc_platform.features.timeframes import (
    TIMEFRAMES,
    join_higher_timeframes,
    resample_all,
    timeframe_bar,
)
from btc_platform_tests.conftest import shared_data

UTC = "UTC"
T0 = pd.Timestamp("2024-03-01", tz=UTC)
H = pd.Timedelta("1h")
OHLCV = ["open", "high", "low", "close", "volume"]


def minutes(rows: list[tuple], symbol: str = "BTC-USD") -> pd.DataFrame:
    """rows: (minutes after T0, open, high, low, close, volume)."""
    df = pd.DataFrame(rows, columns=["m", *OHLCV])
    df.insert(0, "ts", T0 + pd.to_timedelta(df.pop("m"), unit="min"))
    df.insert(1, "symbol", symbol)
    df["source"] = "coinbase"
    return df.astype({c: "float64" for c in OHLCV})


def random_minutes(n: int, seed: int, p_missing: float = 0.3, start: pd.Timestamp = T0,
                   symbol: str = "BTC-USD") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    df = pd.DataFrame({
        "ts": start + pd.to_timedelta(np.arange(n), unit="min"),
        "symbol": symbol,
        "open": open_,
        "high": np.maximum(open_, close) * (1 + rng.uniform(0, 1e-3, n)),
        "low": np.minimum(open_, close) * (1 - rng.uniform(0, 1e-3, n)),
        "close": close,
        "volume": rng.uniform(0, 5, n),
        "source": "coinbase",
    })
    keep = rng.uniform(size=n) > p_missing
    # and a few whole outages, longer than an hour, so filled 1h and 4h bars exist
    for a, b in [(300, 420), (1620, 1980)]:  # 05:00-07:00 and day 2 03:00-09:00
        keep[a:b] = False
    return df[keep].reset_index(drop=True)


# ---------------------------------------------------------------- TIMEFRAMES

def test_timeframes_table():
    assert list(TIMEFRAMES) == ["5m", "15m", "1h", "4h", "1d"]
    expected = {"5m": ("5min", 5, 288), "15m": ("15min", 15, 96), "1h": ("1h", 60, 24),
                "4h": ("4h", 240, 6), "1d": ("1D", 1440, 1)}
    for name, (rule, mins, per_day) in expected.items():
        tf = TIMEFRAMES[name]
        assert (tf.name, tf.rule, tf.bar, tf.bars_per_day) == (name, rule, pd.Timedelta(mins, "min"), per_day)
        assert tf.bars_per_year == per_day * 365
        assert pd.Timedelta(tf.rule) == tf.bar
    assert timeframe_bar("4h") == pd.Timedelta("4h") and timeframe_bar("1d") == pd.Timedelta("1D")
    assert timeframe_bar("30min") == pd.Timedelta("30min")


# ---------------------------------------------------------------- resample_all

def test_resample_all_hand_built():
    df = minutes([
        (-1, 9, 9, 9, 95.0, 1),             # before start: seeds the fill of the first empty bars
        (62, 100, 101, 99, 100.5, 2),       # 01:02
        (63, 100.5, 103, 100, 102, 3),      # 01:03
        (250, 102, 102.5, 98, 99, 4),       # 04:10
        (1439, 99, 100, 97.5, 98, 5),       # 23:59
        (1440, 1, 1000, 1, 1, 1000),        # next day 00:00 = end: never read
    ])
    out = resample_all(df, T0, T0 + pd.Timedelta("1D"), "BTC-USD")
    assert list(out) == ["5m", "15m", "1h", "4h", "1d"]
    assert [len(out[k]) for k in out] == [288, 96, 24, 6, 1]

    d = out["1d"].iloc[0]
    assert [d[c] for c in OHLCV] == [100, 103, 97.5, 98, 14] and d["n_source_bars"] == 4
    h4 = out["4h"]
    assert h4[OHLCV].values.tolist() == [
        [100, 103, 99, 102, 5],      # 00:00-04:00 (minutes 01:02, 01:03)
        [102, 102.5, 98, 99, 4],     # 04:00-08:00
        [99, 99, 99, 99, 0], [99, 99, 99, 99, 0], [99, 99, 99, 99, 0],  # filled from 04:10's close
        [99, 100, 97.5, 98, 5],      # 20:00-24:00
    ]
    assert h4["is_filled"].tolist() == [False, False, True, True, True, False]
    h1 = out["1h"]
    assert h1.loc[0, "close"] == 95.0 and h1.loc[0, "is_filled"]    # 00:00 seeded by the 23:59 row before
    assert h1.loc[1, OHLCV].tolist() == [100, 103, 99, 102, 5]
    # 01:02 and 01:03 share a 5m and a 15m bar
    assert (out["5m"]["is_filled"].sum(), out["15m"]["is_filled"].sum()) == (288 - 3, 96 - 3)
    for k, bars in out.items():
        assert (bars["symbol"] == "BTC-USD").all(), k
        assert bars["volume"].sum() == 14, k                          # the row at `end` never counts


def test_resample_all_only_complete_bars_and_other_symbols_ignored():
    df = pd.concat([random_minutes(2 * 1440, seed=1),
                    random_minutes(2 * 1440, seed=2, symbol="ETH-USD")], ignore_index=True)
    end = T0 + pd.Timedelta("1D") + pd.Timedelta("5h30min")         # not on a 4h or 1d boundary
    out = resample_all(df, T0, end, "BTC-USD")
    assert out["1d"]["ts"].tolist() == [T0]                          # day 2 is still open at `end`
    assert out["4h"]["ts"].iloc[-1] + pd.Timedelta("4h") <= end
    assert out["4h"]["ts"].iloc[-1] == T0 + pd.Timedelta("1D") + pd.Timedelta("0h")
    assert out["1h"]["ts"].iloc[-1] == T0 + pd.Timedelta("1D") + pd.Timedelta("4h")
    assert out["15m"]["ts"].iloc[-1] == T0 + pd.Timedelta("1D") + pd.Timedelta("5h15min")
    for name, bars in out.items():
        assert (bars["ts"] + TIMEFRAMES[name].bar <= end).all(), name
        assert (bars["symbol"] == "BTC-USD").all(), name
    btc = df[df["symbol"] == "BTC-USD"]
    expected = btc.loc[btc["ts"] < T0 + pd.Timedelta("1D"), "volume"].sum()
    assert out["1d"]["volume"].sum() == pytest.approx(expected, rel=1e-12)


def test_resample_all_empty_day_is_all_filled():
    out = resample_all(minutes([]), T0, T0 + pd.Timedelta("1D"), "SOL-USD")
    for name, bars in out.items():
        assert len(bars) == TIMEFRAMES[name].bars_per_day
        assert bars["is_filled"].all() and (bars["volume"] == 0).all() and (bars["symbol"] == "SOL-USD").all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_resample_all_properties_on_random_data(seed):
    df = random_minutes(3 * 1440, seed=seed, p_missing=0.4)
    start, end = T0 + pd.Timedelta("1D"), T0 + pd.Timedelta("3D")
    out = resample_all(df, start, end, "BTC-USD")
    window = df[(df["ts"] >= start) & (df["ts"] < end)]
    for name, bars in out.items():
        tf = TIMEFRAMES[name]
        assert len(bars) == 2 * tf.bars_per_day, name
        assert (bars["ts"].diff().dropna() == tf.bar).all() and bars["ts"].iloc[0] == start
        # volume and row conservation
        assert bars["volume"].sum() == pytest.approx(window["volume"].sum(), rel=1e-12), name
        assert bars["n_source_bars"].sum() == len(window), name
        # OHLC invariants
        assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all(), name
        assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all(), name
        filled = bars[bars["is_filled"]]
        assert (filled["volume"] == 0).all() and (filled["n_source_bars"] == 0).all()
        assert (filled[["open", "high", "low"]].to_numpy() == filled[["close"]].to_numpy()).all()
        # a filled bar repeats the previous bar's close
        prev_close = bars["close"].shift(1)
        assert (filled["close"] == prev_close[filled.index]).all() or filled.index[0] == 0
    assert out["1h"]["is_filled"].any() and out["4h"]["is_filled"].any()


def _from_bars(lower: pd.DataFrame, rule: str, start, end) -> pd.DataFrame:
    """Resample already-resampled bars again; filled bars carry no trades, so they are left out."""
    return resample_ohlcv(lower[~lower["is_filled"]], rule, start, end)


@pytest.mark.parametrize("seed", [3, 4])
@pytest.mark.parametrize("lower,higher", [("1h", "4h"), ("5m", "15m"), ("15m", "1h"), ("4h", "1d"),
                                          ("5m", "1d")])
def test_resample_composes(seed, lower, higher):
    """Resampling 1m -> higher equals 1m -> lower -> higher (OHLCV and is_filled)."""
    df = random_minutes(3 * 1440, seed=seed, p_missing=0.5)
    start, end = T0, T0 + pd.Timedelta("3D")
    direct = resample_all(df, start, end, "BTC-USD", timeframes=[lower, higher])
    via = _from_bars(direct[lower], TIMEFRAMES[higher].rule, start, end)
    pd.testing.assert_frame_equal(via[["ts", *OHLCV[:4], "is_filled"]],
                                  direct[higher][["ts", *OHLCV[:4], "is_filled"]], check_exact=True)
    np.testing.assert_allclose(via["volume"], direct[higher]["volume"], rtol=1e-12)


def test_resample_all_no_look_ahead():
    """Bars closed by T are identical whether or not the minutes after T exist."""
    df = random_minutes(2 * 1440, seed=5)
    start, end = T0, T0 + pd.Timedelta("2D")
    full = resample_all(df, start, end, "BTC-USD")
    for cut in ["4h", "5h17min", "23h59min", "1D", "1D6h"]:
        t = T0 + pd.Timedelta(cut)
        part = resample_all(df[df["ts"] < t], start, end, "BTC-USD")
        for name in full:
            done = (full[name]["ts"] + TIMEFRAMES[name].bar <= t).to_numpy()
            pd.testing.assert_frame_equal(part[name][done], full[name][done], check_exact=True)


# ---------------------------------------------------------------- multi-timeframe join

def _bars(start: pd.Timestamp, n: int, step: str, closes=None) -> pd.DataFrame:
    ts = pd.date_range(start, periods=n, freq=step)
    closes = np.arange(n, dtype=float) if closes is None else np.asarray(closes, dtype=float)
    return pd.DataFrame({"ts": ts, "symbol": "BTC-USD", "close": closes, "volume": closes * 10})


def test_mtf_hand_built_visibility():
    """Base 1h rows of two days; 4h bars close = 1000 + index, 1d bars close = 5000 + index."""
    base = _bars(T0, 48, "1h")
    h4 = _bars(T0, 12, "4h", 1000 + np.arange(12))
    d1 = _bars(T0, 2, "1D", [5000, 5001])
    out = join_higher_timeframes(base, {"4h": h4, "1d": d1}, ["close", "volume"], with_bar_ts=True)

    assert list(out.columns) == [*base.columns, "close_4h", "volume_4h", "ts_4h",
                                 "close_1d", "volume_1d", "ts_1d"]
    at = out.set_index("ts")
    hour = lambda h: T0 + pd.Timedelta(h, "h")  # noqa: E731
    # 4h bar 08:00-12:00 (index 2) closes at 12:00: visible on the 1h row 11:00 (closing 12:00) ...
    assert at.loc[hour(11), "close_4h"] == 1002 and at.loc[hour(11), "ts_4h"] == hour(8)
    assert at.loc[hour(11), "volume_4h"] == 10020
    # ... and on later rows until the next 4h bar closes; never on rows closing before 12:00
    assert at.loc[hour(12):hour(14), "close_4h"].tolist() == [1002] * 3
    assert at.loc[hour(15), "close_4h"] == 1003
    assert at.loc[hour(7):hour(10), "close_4h"].tolist() == [1001] * 4   # bar 04:00-08:00
    assert (at.loc[:hour(10), "close_4h"] != 1002).all()
    # the first rows of the first day: no 4h bar has closed yet, and none is invented
    assert at.loc[hour(0):hour(2), "close_4h"].isna().all() and at.loc[hour(3), "close_4h"] == 1000
    # 1d: day 1's bar (closing at day 2 00:00) shows from the 1h row 23:00 on, day 2's from 47:00
    assert at.loc[:hour(22), "close_1d"].isna().all()
    assert at.loc[hour(23):hour(46), "close_1d"].tolist() == [5000] * 24
    assert at.loc[hour(47), "close_1d"] == 5001
    # every joined bar had closed by the base row's close
    for tf, bar in [("4h", pd.Timedelta("4h")), ("1d", pd.Timedelta("1D"))]:
        seen = out[f"ts_{tf}"].notna()
        assert (out.loc[seen, f"ts_{tf}"] + bar <= out.loc[seen, "ts"] + H).all()
        # ... and it is the latest such bar (the next one had not closed yet)
        assert (out.loc[seen, f"ts_{tf}"] + 2 * bar > out.loc[seen, "ts"] + H).all()


def test_mtf_keeps_order_index_and_units():
    base = _bars(T0, 24, "1h").iloc[::-1]
    base.index = base.index + 100
    base["ts"] = base["ts"].astype("datetime64[us, UTC]")
    h4 = _bars(T0, 6, "4h", 1000 + np.arange(6)).sample(frac=1, random_state=0)
    out = join_higher_timeframes(base, {"4h": h4}, ["close"])
    assert out.index.equals(base.index) and out["ts"].equals(base["ts"])
    assert out.set_index("ts").loc[T0 + pd.Timedelta("7h"), "close_4h"] == 1001


def test_mtf_missing_higher_bar_is_nan_unless_max_age():
    base = _bars(T0, 24, "1h")
    h4 = _bars(T0, 6, "4h", 1000 + np.arange(6)).drop(index=2)       # 08:00-12:00 never arrived
    strict = join_higher_timeframes(base, {"4h": h4}, ["close"]).set_index("ts")["close_4h"]
    rows = [T0 + pd.Timedelta(h, "h") for h in range(11, 15)]           # rows closing 12:00..15:00
    assert strict.loc[rows].isna().all()                               # not 04:00-08:00's value
    assert strict.loc[T0 + pd.Timedelta("15h")] == 1003
    stale = join_higher_timeframes(base, {"4h": h4}, ["close"], max_age=pd.Timedelta("8h"))
    assert stale.set_index("ts")["close_4h"].loc[rows].tolist() == [1001] * 4


def test_mtf_joins_per_symbol():
    base = pd.concat([_bars(T0, 8, "1h").assign(symbol=s) for s in ("BTC-USD", "ETH-USD")])
    h4 = pd.concat([_bars(T0, 2, "4h", [1, 2]).assign(symbol="BTC-USD"),
                    _bars(T0, 2, "4h", [10, 20]).assign(symbol="ETH-USD")])
    out = join_higher_timeframes(base, {"4h": h4}, ["close"])
    got = out.groupby("symbol")["close_4h"].apply(list).to_dict()
    nan = np.nan
    np.testing.assert_equal(got["BTC-USD"], [nan, nan, nan, 1, 1, 1, 1, 2])
    np.testing.assert_equal(got["ETH-USD"], [nan, nan, nan, 10, 10, 10, 10, 20])


def test_mtf_rejects_bad_input():
    base = _bars(T0, 8, "4h")
    with pytest.raises(ValueError, match="not higher"):
        join_higher_timeframes(base, {"1h": _bars(T0, 8, "1h")}, ["close"])
    with pytest.raises(ValueError, match="lacks"):
        join_higher_timeframes(base, {"1d": _bars(T0, 2, "1D")}, ["rsi_14"])
    dup = _bars(T0, 2, "1D")
    with pytest.raises(ValueError, match="duplicate"):
        join_higher_timeframes(base, {"1d": pd.concat([dup, dup])}, ["close"])


def _mtf(df: pd.DataFrame, start, end) -> pd.DataFrame:
    bars = resample_all(df, start, end, "BTC-USD", timeframes=["1h", "4h", "1d"])
    return join_higher_timeframes(bars["1h"], {"4h": bars["4h"], "1d": bars["1d"]},
                                  ["open", "high", "low", "close", "volume", "is_filled"],
                                  with_bar_ts=True)


def test_mtf_matches_brute_force():
    df = random_minutes(3 * 1440, seed=8)
    out = _mtf(df, T0, T0 + pd.Timedelta("3D"))
    bars = resample_all(df, T0, T0 + pd.Timedelta("3D"), "BTC-USD", timeframes=["4h", "1d"])
    for tf, hb in bars.items():
        bar = TIMEFRAMES[tf].bar
        for _, row in out.iloc[::5].iterrows():
            closed = hb[hb["ts"] + bar <= row["ts"] + H]
            if closed.empty:
                assert np.isnan(row[f"close_{tf}"])
            else:
                last = closed.iloc[-1]
                assert row[f"ts_{tf}"] == last["ts"]
                assert row[f"high_{tf}"] == last["high"] and row[f"volume_{tf}"] == last["volume"]


@pytest.mark.parametrize("cut", ["11h", "12h", "12h1min", "13h37min", "1D", "1D3h59min", "2D4h"])
def test_mtf_no_look_ahead_truncation(cut):
    """Drop every minute at or after T, recompute: rows of 1h bars closing <= T are unchanged."""
    df = random_minutes(3 * 1440, seed=9)
    start, end = T0, T0 + pd.Timedelta("3D")
    t = T0 + pd.Timedelta(cut)
    full = _mtf(df, start, end)
    part = _mtf(df[df["ts"] < t], start, end)
    done = (full["ts"] + H <= t).to_numpy()
    assert done.sum() == (t - T0) // H
    pd.testing.assert_frame_equal(part[done], full[done], check_exact=True)
    # the check has teeth: something after T did change (the input really was cut)
    assert not part[~done].equals(full[~done])


# ---------------------------------------------------------------- real data

def _real(tf: str, n: int | None = None) -> pd.DataFrame:
    path = shared_data("hourly_binance_freqtrade", f"BTC_USDT-{tf}.json.gz")
    rows = json.loads(gzip.decompress(path.read_bytes()))
    df = pd.DataFrame(rows[-n:] if n else rows, columns=["ms", *OHLCV])
    df.insert(0, "ts", pd.to_datetime(df.pop("ms"), unit="ms", utc=True))
    df.insert(1, "symbol", "BTC-USDT")
    df["source"] = "binance"
    return df


def test_real_1h_resampled_to_4h_matches_binance_4h():
    h1, h4 = _real("1h"), _real("4h")
    start, end = h4["ts"].iloc[0], h4["ts"].iloc[-1] + pd.Timedelta("4h")
    ours = resample_ohlcv(h1, "4h", start, end).set_index("ts")
    theirs = h4.set_index("ts")
    complete = ours.index[ours["n_source_bars"] == 4].intersection(theirs.index)
    assert len(complete) > 11000
    pd.testing.assert_frame_equal(ours.loc[complete, OHLCV[:4]], theirs.loc[complete, OHLCV[:4]],
                                  check_freq=False)
    np.testing.assert_allclose(ours.loc[complete, "volume"], theirs.loc[complete, "volume"], rtol=1e-6)


def test_real_mtf_join_against_brute_force_and_gaps():
    h1, h4, d1 = _real("1h"), _real("4h"), _real("1d")
    out = join_higher_timeframes(h1, {"4h": h4, "1d": d1}, ["close"], base_bar="1h", with_bar_ts=True)
    for tf, hb, bar in [("4h", h4, pd.Timedelta("4h")), ("1d", d1, pd.Timedelta("1D"))]:
        seen = out[f"ts_{tf}"].notna()
        base_close = out["ts"] + H
        assert (out.loc[seen, f"ts_{tf}"] + bar <= base_close[seen]).all()
        # the joined bar is the latest one due: it closed within one higher bar of the base close
        assert (out.loc[seen, f"ts_{tf}"] + 2 * bar > base_close[seen]).all()
        # rows without a value are exactly those whose due bar is absent from the file
        due = base_close.dt.floor(bar) - bar  # open time of the bar closing last at/before it
        assert (~seen == ~due.isin(hb["ts"])).all()
        lookup = hb.set_index("ts")["close"]
        np.testing.assert_array_equal(out.loc[seen, f"close_{tf}"], lookup.loc[out.loc[seen, f"ts_{tf}"]])
    assert out["close_4h"].isna().sum() > 0  # the 4h file has real gaps
