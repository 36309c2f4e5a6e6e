"""Resampling, technical indicators (against `ta` 0.11) and forward targets."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import ta

from btc_platform.features import (
    FEATURE_COLUMNS,
    compute_forward_returns,
    compute_technical_features,
    resample_ohlcv,
)

UTC = "UTC"
T0 = pd.Timestamp("2024-03-01", tz=UTC)
SHARED = Path(__file__).resolve().parents[3] / "shared/data"
REAL_1H = SHARED / "hourly_binance_freqtrade/BTC_USDT-1h.json.gz"
REAL_1M = SHARED / "candles_1m_btcusdt/BTCUSDT-1m-2024-01.csv.gz"


def candles(rows: list[tuple], symbol: str = "BTC-USD") -> pd.DataFrame:
    """rows: (minutes after T0, open, high, low, close, volume)."""
    df = pd.DataFrame(rows, columns=["m", "open", "high", "low", "close", "volume"])
    df.insert(0, "ts", T0 + pd.to_timedelta(df.pop("m"), unit="min"))
    df.insert(1, "symbol", symbol)
    df["source"] = "coinbase"
    df["ingested_at"] = pd.Timestamp("2024-03-02", tz=UTC)
    return df.astype({c: "float64" for c in ["open", "high", "low", "close", "volume"]})


def random_candles(n: int, seed: int, p_missing: float = 0.3) -> pd.DataFrame:
    """1m candles over n minutes with random absent minutes (as Coinbase serves them)."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 1e-3, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 1e-3, n))
    rows = [(m, o, h, l, c, v) for m, o, h, l, c, v in
            zip(range(n), open_, high, low, close, rng.uniform(0, 5, n))]
    df = candles(rows)
    return df[rng.uniform(size=n) > p_missing].reset_index(drop=True)


# ---------------------------------------------------------------- resample

def test_resample_hand_built_with_missing_hour():
    df = candles([
        (-1, 9, 9, 9, 95.0, 1),          # before start: only seeds a fill
        (0, 100, 101, 99, 100.5, 2),
        (1, 100.5, 103, 100, 102, 3),
        (30, 102, 102.5, 98, 99, 4),
        (59, 99, 100, 97.5, 98, 5),
        # hour 01:00 entirely missing
        (125, 97, 99, 96, 98.5, 6),
        (170, 98.5, 104, 98, 103, 7),
        (180, 1, 1000, 1, 1, 1000),      # at `end`: ignored
    ])
    out = resample_ohlcv(df, "1h", T0, T0 + pd.Timedelta("3h"))

    assert list(out.columns) == ["ts", "symbol", "open", "high", "low", "close", "volume",
                                 "n_source_bars", "bar_coverage", "is_filled", "source"]
    assert list(out["ts"]) == [T0, T0 + pd.Timedelta("1h"), T0 + pd.Timedelta("2h")]
    assert out[["open", "high", "low", "close", "volume"]].values.tolist() == [
        [100, 103, 97.5, 98, 14],
        [98, 98, 98, 98, 0],
        [97, 104, 96, 103, 13],
    ]
    assert out["n_source_bars"].tolist() == [4, 0, 2]
    assert out["bar_coverage"].tolist() == [4 / 60, 0.0, 2 / 60]
    assert out["is_filled"].tolist() == [False, True, False]
    assert (out["symbol"] == "BTC-USD").all() and (out["source"] == "coinbase").all()
    assert out["n_source_bars"].dtype == np.int64 and out["is_filled"].dtype == bool


def test_resample_leading_gap_uses_earlier_row_or_stays_nan():
    df = candles([(-5, 9, 9, 9, 95.0, 1), (70, 96, 97, 95, 96.5, 2)])
    window = (T0, T0 + pd.Timedelta("2h"))
    seeded = resample_ohlcv(df, "1h", *window)
    assert seeded["close"].tolist() == [95.0, 96.5]
    assert seeded["open"].iloc[0] == seeded["high"].iloc[0] == seeded["low"].iloc[0] == 95.0
    assert seeded["is_filled"].tolist() == [True, False]

    unseeded = resample_ohlcv(df.iloc[1:], "1h", *window)
    assert unseeded.loc[0, ["open", "high", "low", "close"]].isna().all()
    assert unseeded["is_filled"].tolist() == [True, False]
    assert unseeded["volume"].tolist() == [0.0, 2.0]


def test_resample_empty_input_gives_filled_bars():
    out = resample_ohlcv(candles([]), "1h", T0, T0 + pd.Timedelta("1D"), symbol="ETH-USD")
    assert len(out) == 24 and out["is_filled"].all() and (out["symbol"] == "ETH-USD").all()
    assert out["close"].isna().all() and (out["volume"] == 0).all()


@pytest.mark.parametrize("rule", ["5min", "15min", "1h", "4h", "1D"])
def test_resample_properties_on_random_data(rule):
    df = random_candles(3 * 1440, seed=7)
    start, end = T0 + pd.Timedelta("1D"), T0 + pd.Timedelta("3D")
    out = resample_ohlcv(df, rule, start, end)

    step = pd.Timedelta(rule)
    assert len(out) == (end - start) / step
    assert (out["ts"].diff().dropna() == step).all() and out["ts"].iloc[0] == start
    real = out[~out["is_filled"]]
    assert (real["high"] >= real[["open", "close"]].max(axis=1)).all()
    assert (real["low"] <= real[["open", "close"]].min(axis=1)).all()
    window = df[(df["ts"] >= start) & (df["ts"] < end)]
    assert out["volume"].sum() == pytest.approx(window["volume"].sum(), rel=1e-12)
    assert out["n_source_bars"].sum() == len(window)
    # Reference: pandas' own resample of the same window (labelled and closed left).
    ref = window.set_index("ts").resample(rule, label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    ref = ref.reindex(out["ts"])
    got = out.set_index("ts")
    np.testing.assert_allclose(got.loc[~out["is_filled"].to_numpy(), "close"],
                               ref["close"].dropna(), rtol=0)
    np.testing.assert_allclose(got["volume"], ref["volume"].fillna(0), rtol=1e-12)


def test_resample_no_look_ahead():
    """A bar never changes when rows after it are appended."""
    df = random_candles(600, seed=3, p_missing=0.5)
    start, end = T0, T0 + pd.Timedelta("10h")
    full = resample_ohlcv(df, "1h", start, end)
    for cut in [pd.Timedelta(m, "min") for m in (60, 61, 179, 300, 599)]:
        part = resample_ohlcv(df[df["ts"] < T0 + cut], "1h", start, end)
        done = (part["ts"] + pd.Timedelta("1h") <= T0 + cut).to_numpy()
        pd.testing.assert_frame_equal(part[done], full[done])


def test_resample_real_minutes_with_holes_matches_pandas():
    if not REAL_1M.exists():
        pytest.skip(f"real data not present: {REAL_1M} (shared data folder absent on this machine)")
    raw = pd.read_csv(REAL_1M, header=None, usecols=range(6), nrows=3 * 1440)
    raw.columns = ["ms", "open", "high", "low", "close", "volume"]
    df = raw.assign(ts=pd.to_datetime(raw.pop("ms"), unit="ms", utc=True), symbol="BTC-USDT",
                    source="binance")
    df = df[~df["ts"].between(T0.replace(month=1, day=2, hour=5),
                              T0.replace(month=1, day=2, hour=7, minute=30))]  # a 2.5h outage
    start = pd.Timestamp("2024-01-01", tz=UTC)
    out = resample_ohlcv(df, "1h", start, start + pd.Timedelta("3D"))
    ref = df.set_index("ts").resample("1h").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    real = out.set_index("ts").loc[~out["is_filled"].to_numpy()]
    pd.testing.assert_frame_equal(real[ref.columns], ref.loc[real.index], check_freq=False)
    filled = out[out["is_filled"]]
    assert filled["ts"].dt.hour.tolist() == [5, 6] and (filled["close"] == ref["close"].iloc[28]).all()


def test_resample_microsecond_input_and_multi_source():
    df = candles([(0, 1, 2, 0.5, 1.5, 1), (1, 1.5, 2, 1, 1.8, 1), (61, 2, 3, 2, 2.5, 1)])
    df["ts"] = df["ts"].astype("datetime64[us, UTC]")
    df.loc[1, "source"] = "fallback:coinapi"
    out = resample_ohlcv(df, "1h", T0, T0 + pd.Timedelta("3h"))
    assert str(out["ts"].dtype) == "datetime64[us, UTC]"
    assert out["source"].tolist() == ["coinbase,fallback:coinapi", "coinbase",
                                      "coinbase,fallback:coinapi"]
    assert out["close"].tolist() == [1.8, 2.5, 2.5]


# ---------------------------------------------------------------- technical

def gbm_bars(n: int = 2000, seed: int = 42) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 30000 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate(([30000.0], close[:-1]))
    return pd.DataFrame({
        "ts": pd.date_range(T0, periods=n, freq="1h"),
        "symbol": "BTC-USD",
        "open": open_,
        "high": np.maximum(open_, close) * (1 + rng.exponential(0.003, n)),
        "low": np.minimum(open_, close) * (1 - rng.exponential(0.003, n)),
        "close": close,
        "volume": rng.uniform(1, 100, n),
        "is_filled": False,
    })


def real_bars(n: int = 3000) -> pd.DataFrame:
    if not REAL_1H.exists():
        pytest.skip(f"real data not present: {REAL_1H} (shared data folder absent on this machine)")
    rows = json.loads(gzip.decompress(REAL_1H.read_bytes()))[-n:]
    df = pd.DataFrame(rows, columns=["ms", "open", "high", "low", "close", "volume"])
    df.insert(0, "ts", pd.to_datetime(df.pop("ms"), unit="ms", utc=True))
    df.insert(1, "symbol", "BTC-USDT")
    return df


def ta_reference(b: pd.DataFrame) -> pd.DataFrame:
    c, h, l = b["close"], b["high"], b["low"]
    macd = ta.trend.MACD(c, window_slow=26, window_fast=12, window_sign=9)
    bb = ta.volatility.BollingerBands(c, window=20, window_dev=2)
    return pd.DataFrame({
        "rsi_14": ta.momentum.RSIIndicator(c, window=14).rsi(),
        "macd": macd.macd(), "macd_signal": macd.macd_signal(), "macd_histogram": macd.macd_diff(),
        "bb_upper": bb.bollinger_hband(), "bb_middle": bb.bollinger_mavg(),
        "bb_lower": bb.bollinger_lband(),
        "sma_20": ta.trend.SMAIndicator(c, 20).sma_indicator(),
        "sma_50": ta.trend.SMAIndicator(c, 50).sma_indicator(),
        "sma_200": ta.trend.SMAIndicator(c, 200).sma_indicator(),
        "ema_12": ta.trend.EMAIndicator(c, 12).ema_indicator(),
        "ema_26": ta.trend.EMAIndicator(c, 26).ema_indicator(),
        "atr_14": ta.volatility.AverageTrueRange(h, l, c, window=14).average_true_range(),
    })


@pytest.mark.parametrize("source", ["gbm", "real"])
def test_technical_matches_ta(source):
    bars = gbm_bars() if source == "gbm" else real_bars()
    got = compute_technical_features(bars, bars_per_year=24 * 365)
    ref = ta_reference(bars.reset_index(drop=True))

    assert list(got.columns) == ["ts", "symbol", "close", *FEATURE_COLUMNS]
    assert (got[FEATURE_COLUMNS].dtypes == "float64").all()
    for col in ref.columns:
        rtol = 1e-5 if col.startswith("bb_") else 1e-9
        np.testing.assert_allclose(got[col].iloc[300:], ref[col].iloc[300:], rtol=rtol, err_msg=col)
        if col != "atr_14":  # same warm-up NaNs everywhere else
            assert (got[col].isna() == ref[col].isna()).all(), col
    # ATR: NaN where ta writes its warm-up 0.0, ta's seed exactly at row 13.
    assert got["atr_14"].iloc[:13].isna().all() and (ref["atr_14"].iloc[:13] == 0).all()
    np.testing.assert_allclose(got["atr_14"].iloc[13:], ref["atr_14"].iloc[13:], rtol=1e-9)


def test_log_return_and_volatility():
    bars = gbm_bars(400)
    got = compute_technical_features(bars, bars_per_year=8760)
    lr = np.log(bars["close"] / bars["close"].shift(1))
    np.testing.assert_allclose(got["log_return_1"], lr, rtol=1e-12)
    i = 250
    expected = np.std(lr.iloc[i - 29:i + 1], ddof=1) * np.sqrt(8760)
    assert got["volatility_30"].iloc[i] == pytest.approx(expected, rel=1e-9)
    assert got["volatility_30"].iloc[:30].isna().all() and got["volatility_30"].iloc[30:].notna().all()


@pytest.mark.parametrize("k", [10, 14, 40, 250, 1500])
def test_technical_no_look_ahead(k):
    """Features computed on rows[:k] equal features on all rows for every row < k."""
    bars = gbm_bars(2000, seed=5)
    full = compute_technical_features(bars, 8760)
    part = compute_technical_features(bars.iloc[:k], 8760)
    pd.testing.assert_frame_equal(part, full.iloc[:k], check_exact=True)


def test_technical_filled_bars_are_ordinary_bars():
    df = random_candles(2 * 1440, seed=11, p_missing=0.0)
    df = df[(df["ts"] < T0 + pd.Timedelta("5h")) | (df["ts"] >= T0 + pd.Timedelta("8h"))]
    bars = resample_ohlcv(df, "15min", T0, T0 + pd.Timedelta("2D"))
    assert bars["is_filled"].sum() == 12
    got = compute_technical_features(bars, 4 * 24 * 365)
    ref = ta_reference(bars)
    np.testing.assert_allclose(got["rsi_14"].iloc[20:], ref["rsi_14"].iloc[20:], rtol=1e-9)
    np.testing.assert_allclose(got["atr_14"].iloc[13:], ref["atr_14"].iloc[13:], rtol=1e-9)
    gap = bars["is_filled"].to_numpy()
    assert (got.loc[gap, "log_return_1"].iloc[1:] == 0).all()  # flat price inside the gap


def test_technical_rejects_unsorted():
    with pytest.raises(ValueError, match="sorted"):
        compute_technical_features(gbm_bars(50).iloc[::-1], 8760)


# ---------------------------------------------------------------- targets

def test_forward_returns_missing_bar_gives_nan_at_right_rows():
    hours = [0, 1, 2, 4, 5, 25, 26]                      # 03:00 missing; 24h later only for 01, 02
    close = [100.0, 101.0, 99.0, 104.0, 103.0, 110.0, 90.0]
    bars = pd.DataFrame({"ts": [T0 + pd.Timedelta(h, "h") for h in hours],
                         "symbol": "BTC-USD", "close": close})
    out = compute_forward_returns(bars, {"1h": 1, "24h": 24}, bar=pd.Timedelta("1h"))

    assert list(out.columns) == ["ts", "symbol", "close", "target_return_1h", "target_return_24h"]
    r1 = out["target_return_1h"]
    expected_1h = [np.log(101 / 100), np.log(99 / 101), np.nan, np.log(103 / 104), np.nan,
                   np.log(90 / 110), np.nan]
    np.testing.assert_allclose(r1, expected_1h, rtol=1e-15)
    assert r1.isna().tolist() == [False, False, True, False, True, False, True]
    r24 = out["target_return_24h"]
    assert r24.isna().tolist() == [True, False, False, True, True, True, True]
    assert r24.iloc[1] == pytest.approx(np.log(110 / 101), rel=1e-15)
    assert r24.iloc[2] == pytest.approx(np.log(90 / 99), rel=1e-15)


def test_forward_returns_match_shift_on_regular_bars():
    bars = gbm_bars(500)
    out = compute_forward_returns(bars, {"1h": 1, "24h": 24}, bar=pd.Timedelta("1h"))
    for name, n in {"1h": 1, "24h": 24}.items():
        expected = np.log(bars["close"].shift(-n) / bars["close"])
        np.testing.assert_allclose(out[f"target_return_{name}"], expected, rtol=1e-15)


def test_forward_returns_reject_duplicate_ts():
    bars = gbm_bars(5)
    with pytest.raises(ValueError, match="duplicate"):
        compute_forward_returns(pd.concat([bars, bars.iloc[[2]]]), {"1h": 1}, pd.Timedelta("1h"))
