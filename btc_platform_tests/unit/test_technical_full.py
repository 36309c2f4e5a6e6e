"""The full technical feature set: `ta`-exact values, qlib's Alpha158 formulas, timeframes and
day-based windows, no look-ahead in any column, and incremental computation with `lookback_bars`."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest
import ta

from btc_platform.features.resample import resample_ohlcv
from btc_platform.features.technical import (
    CORE_COLUMNS,
    EMA_SETTLE_BARS,
    FEATURE_COLUMNS,
    RECURSIVE_COLUMNS,
    TA_COLUMNS,
    TA_CORE_COLUMNS,
    bars_per_day,
    bars_per_year,
    compute_technical_features,
    lookback_bars,
    parse_timeframe,
    timeframe_from_bars_per_year,
    window_bars,
)
from btc_platform.sandbox.market import GeneratedMarket
from btc_platform_tests.conftest import shared_data

UTC = "UTC"
OHLCV = ["open", "high", "low", "close", "volume"]
SCHEMA_COLUMNS = [  # the 90-day prediction schema's technical indicators
    "rsi_14", "macd", "macd_signal", "macd_histogram", "bb_upper", "bb_middle", "bb_lower", "sma_20",
    "sma_50", "sma_200", "ema_12", "ema_26", "volatility_30d", "volatility_60d", "volatility_90d",
    "momentum_5d", "momentum_10d", "momentum_30d", "atr_14", "adx_14",
]
# Rows where ta writes 0.0 as warm-up (we write NaN).
TA_ZERO_WARMUP = {"atr_14": 13, "adx_14": 27, "di_plus_14": 15, "di_minus_14": 15}
# Columns with no running sum inside: identical whatever row the computation starts from.
START_INDEPENDENT = {"kmid", "klen", "kup", "klow", "ksft", "log_volume", "log_return_1", "pct_return_1",
                     "log_return_1d", *[c for c in FEATURE_COLUMNS if c.startswith(("momentum_", "roc_", "rsv_",
                                                                                    "cntp_"))]}


# ---------------------------------------------------------------------------------------- data


def _freqtrade(name: str, n: int | None = None) -> pd.DataFrame:
    path = shared_data("hourly_binance_freqtrade", name)
    rows = json.loads(gzip.decompress(path.read_bytes()))
    df = pd.DataFrame(rows[-n:] if n else rows, columns=["ms", *OHLCV])
    df.insert(0, "ts", pd.to_datetime(df.pop("ms"), unit="ms", utc=True))
    df.insert(1, "symbol", "BTC-USDT")
    return df


def real_1m(month: str = "01", nrows: int | None = None) -> pd.DataFrame:
    path = shared_data("candles_1m_btcusdt", f"BTCUSDT-1m-2024-{month}.csv.gz")
    raw = pd.read_csv(path, header=None, usecols=range(6), nrows=nrows)
    raw.columns = ["ms", *OHLCV]
    raw.insert(0, "ts", pd.to_datetime(raw.pop("ms"), unit="ms", utc=True))
    raw.insert(1, "symbol", "BTC-USDT")
    return raw


def real_daily() -> pd.DataFrame:
    raw = pd.read_csv(shared_data("daily", "BTC-USD_daily_yahoo.csv"))
    df = pd.DataFrame({"ts": pd.to_datetime(raw["Date"], utc=True), "symbol": "BTC-USD",
                       "open": raw["Open"], "high": raw["High"], "low": raw["Low"], "close": raw["Close"],
                       "volume": raw["Volume"].astype("float64")})
    return df.dropna().reset_index(drop=True)


def generated(rule: str, days: int, start: str = "2021-01-01") -> pd.DataFrame:
    """Bars of `rule` resampled from the sandbox's generated 1-minute market (filled bars included)."""
    t0 = pd.Timestamp(start, tz=UTC)
    t1 = t0 + pd.Timedelta(days=days)
    minutes = GeneratedMarket(7).minutes("BTC-USD", t0, t1).assign(symbol="BTC-USD", source="generated")
    return resample_ohlcv(minutes, rule, t0, t1)


def with_flat_gap(bars: pd.DataFrame, start: int, length: int) -> pd.DataFrame:
    """Rows start..start+length-1 become filled bars: the previous close, volume 0."""
    out = bars.copy()
    prev = out.loc[start - 1, "close"]
    out.loc[start:start + length - 1, ["open", "high", "low", "close"]] = prev
    out.loc[start:start + length - 1, "volume"] = 0.0
    return out


DATASETS = {
    "real_1h": lambda: (_freqtrade("BTC_USDT-1h.json.gz", 4000), "1h"),
    "real_4h": lambda: (_freqtrade("BTC_USDT-4h.json.gz", 3000), "4h"),
    "real_1d": lambda: (_freqtrade("BTC_USDT-1d.json.gz"), "1d"),
    "real_1m": lambda: (real_1m("01", 20_000), "1m"),
    "yahoo_1d": lambda: (real_daily(), "1d"),
    "generated_15m": lambda: (generated("15min", 40), "15m"),
    "generated_1h_gap": lambda: (with_flat_gap(generated("1h", 120), 1500, 60), "1h"),
}


def ta_reference(b: pd.DataFrame, timeframe: str) -> dict[str, pd.Series]:
    b = b.reset_index(drop=True)
    c, h, l, v = b["close"], b["high"], b["low"], b["volume"]
    macd = ta.trend.MACD(c, window_slow=26, window_fast=12, window_sign=9)
    bb = ta.volatility.BollingerBands(c, window=20, window_dev=2)
    adx = ta.trend.ADXIndicator(h, l, c, window=14)
    ref = {
        "rsi_14": ta.momentum.RSIIndicator(c, window=14).rsi(),
        "macd": macd.macd(), "macd_signal": macd.macd_signal(), "macd_histogram": macd.macd_diff(),
        "bb_upper": bb.bollinger_hband(), "bb_middle": bb.bollinger_mavg(), "bb_lower": bb.bollinger_lband(),
        "bb_pband": bb.bollinger_pband(), "bb_wband": bb.bollinger_wband(),
        "sma_20": ta.trend.SMAIndicator(c, 20).sma_indicator(),
        "sma_50": ta.trend.SMAIndicator(c, 50).sma_indicator(),
        "sma_200": ta.trend.SMAIndicator(c, 200).sma_indicator(),
        "ema_12": ta.trend.EMAIndicator(c, 12).ema_indicator(),
        "ema_26": ta.trend.EMAIndicator(c, 26).ema_indicator(),
        "atr_14": ta.volatility.AverageTrueRange(h, l, c, window=14).average_true_range(),
        "adx_14": adx.adx(), "di_plus_14": adx.adx_pos(), "di_minus_14": adx.adx_neg(),
        "mfi_14": ta.volume.MFIIndicator(h, l, c, v, window=14).money_flow_index(),
        "cmf_20": ta.volume.ChaikinMoneyFlowIndicator(h, l, c, v, window=20).chaikin_money_flow(),
        "vwap_14": ta.volume.VolumeWeightedAveragePrice(h, l, c, v, window=14).volume_weighted_average_price(),
        "log_return_1": ta.others.DailyLogReturnIndicator(c).daily_log_return() / 100,
        "pct_return_1": ta.others.DailyReturnIndicator(c).daily_return() / 100,
    }
    for name in [n for n in TA_COLUMNS if n.startswith("momentum_")]:
        ref[name] = ta.momentum.ROCIndicator(c, window=window_bars(name, timeframe)).roc() / 100
    assert set(ref) == set(TA_COLUMNS)
    return ref


def assert_matches_ta(got: np.ndarray, ref: np.ndarray, col: str, start: int = 0) -> None:
    rtol = 1e-5 if col.startswith("bb_") else 1e-9
    # ta's log return is a difference of logs: rounding of 1e-16 on the logs, absolute. %B is a
    # position between the bands: near 0 the bands' rounding (ta's running variance) dominates.
    atol = {"log_return_1": 1e-13, "bb_pband": 1e-7}.get(col, 0.0)
    np.testing.assert_allclose(got[start:], ref[start:], rtol=rtol, atol=atol, err_msg=col)


# ---------------------------------------------------------------------------------------- columns


def test_feature_columns_cover_the_schema_and_more_than_fifty():
    assert len(FEATURE_COLUMNS) == len(set(FEATURE_COLUMNS)) == 82
    assert FEATURE_COLUMNS[: len(CORE_COLUMNS)] == CORE_COLUMNS
    assert set(SCHEMA_COLUMNS) <= set(FEATURE_COLUMNS)
    assert set(TA_CORE_COLUMNS) <= set(TA_COLUMNS) <= set(FEATURE_COLUMNS)
    assert RECURSIVE_COLUMNS <= set(TA_COLUMNS)
    alpha = [f"{k}_{d}" for d in (5, 10, 20, 30, 60) for k in ("roc", "ma", "std", "rsv", "corr", "cntp", "sump")]
    assert set(alpha) | {"kmid", "klen", "kup", "klow", "ksft"} <= set(FEATURE_COLUMNS)


def test_output_frame_layout():
    bars, _ = DATASETS["generated_15m"]()
    bars.index = bars.index + 1000  # not a RangeIndex from 0: nothing may align on it
    got = compute_technical_features(bars, "15m")
    assert list(got.columns) == ["ts", "symbol", "close", *FEATURE_COLUMNS]
    assert (got[["close", *FEATURE_COLUMNS]].dtypes == "float64").all()
    assert isinstance(got.index, pd.RangeIndex) and got.index[0] == 0 and len(got) == len(bars)
    assert (got["ts"].to_numpy() == bars["ts"].to_numpy()).all()
    assert got["ts"].dtype == bars["ts"].dtype and (got["symbol"] == "BTC-USD").all()


# ---------------------------------------------------------------------------------------- ta


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_every_ta_indicator_equals_ta(dataset):
    bars, tf = DATASETS[dataset]()
    got = compute_technical_features(bars, tf)
    ref = ta_reference(bars, tf)
    for col, series in ref.items():
        g, r = got[col].to_numpy(), series.to_numpy()
        # After the warm-up: the same values and the same NaNs (e.g. bb_pband where the bands meet).
        assert_matches_ta(g, r, col, start=300)
        # In the warm-up too, except that ta writes 0.0 where we write NaN.
        zeros = TA_ZERO_WARMUP.get(col, 0)
        assert np.isnan(g[:zeros]).all() and (r[:zeros] == 0).all(), col
        assert_matches_ta(g, r, col, start=zeros)


def test_adx_and_atr_warm_up_rows_and_seeds():
    bars, _ = DATASETS["real_1h"]()
    bars = bars.iloc[:60].reset_index(drop=True)
    got = compute_technical_features(bars, "1h", columns=["atr_14", "adx_14", "di_plus_14", "di_minus_14"])
    adx = ta.trend.ADXIndicator(bars["high"], bars["low"], bars["close"], window=14)
    for col, first in [("atr_14", 13), ("adx_14", 27), ("di_plus_14", 15), ("di_minus_14", 15)]:
        assert got[col].iloc[:first].isna().all() and got[col].iloc[first:].notna().all(), col
    # ADX's seed at row 27 is the mean of DX over rows 14..27, exactly as ta.
    assert got["adx_14"].iloc[27] == pytest.approx(adx.adx().iloc[27], rel=1e-12)
    assert got["di_plus_14"].iloc[15] == pytest.approx(adx.adx_pos().iloc[15], rel=1e-12)


@pytest.mark.parametrize("n", [0, 1, 2, 13, 14, 15, 27, 28, 40])
def test_short_inputs(n):
    bars, _ = DATASETS["generated_15m"]()
    got = compute_technical_features(bars.iloc[:n], "15m")
    assert list(got.columns) == ["ts", "symbol", "close", *FEATURE_COLUMNS] and len(got) == n
    assert got["sma_200"].isna().all() and got["volatility_30d"].isna().all()
    if n >= 28:
        assert got["adx_14"].iloc[27:].notna().all()


# ---------------------------------------------------------------------------------------- timeframes


def test_timeframes_and_day_based_windows():
    assert {tf: bars_per_day(tf) for tf in ["1m", "5m", "15m", "1h", "4h", "1d"]} == {
        "1m": 1440, "5m": 288, "15m": 96, "1h": 24, "4h": 6, "1d": 1}
    assert bars_per_year("1h") == 8760 and bars_per_year("1d") == 365 and bars_per_year("1m") == 525_600
    assert parse_timeframe("60min") == parse_timeframe("1h") and parse_timeframe("1D").name == "1d"
    assert parse_timeframe("30min").bars_per_day == 48
    assert window_bars("volatility_30d", "1h") == 720
    assert window_bars("volatility_30", "1h") == 30
    assert window_bars("momentum_5d", "4h") == 30
    assert window_bars("volatility_90d", "5m") == 90 * 288
    assert window_bars("90d", "1d") == 90 and window_bars("sma_200", "15m") == 200
    with pytest.raises(ValueError, match="no window"):
        window_bars("macd", "1h")
    for bad in ["7min", "1M", "fortnight"]:
        with pytest.raises(ValueError):
            parse_timeframe(bad)
    with pytest.raises(TypeError):
        parse_timeframe(5)


def test_legacy_bars_per_year_call_is_the_timeframe_call():
    bars, _ = DATASETS["real_1h"]()
    expected = compute_technical_features(bars, "1h")
    for got in (compute_technical_features(bars, 8760), compute_technical_features(bars, bars_per_year=24 * 365),
                compute_technical_features(bars, timeframe="1h", bars_per_year=8760)):
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert timeframe_from_bars_per_year(8760).name == "1h"
    assert timeframe_from_bars_per_year(4 * 24 * 365).name == "15m"
    with pytest.raises(ValueError, match="whole number"):
        timeframe_from_bars_per_year(252)
    with pytest.raises(ValueError, match="contradicts"):
        compute_technical_features(bars, "4h", bars_per_year=8760)
    with pytest.raises(TypeError):
        compute_technical_features(bars)


def test_day_based_columns_use_bars_per_day():
    bars, _ = DATASETS["generated_1h_gap"]()
    got = compute_technical_features(bars, "1h")
    close = bars["close"]
    lr = np.log(close / close.shift(1))
    for n in (30, 60, 90):
        col = got[f"volatility_{n}d"]
        assert col.iloc[: n * 24].isna().all() and col.iloc[n * 24:].notna().all()
        i = len(bars) - 7
        expected = np.std(lr.iloc[i - n * 24 + 1: i + 1], ddof=1) * np.sqrt(8760)
        assert col.iloc[i] == pytest.approx(expected, rel=1e-9)
    for n in (5, 10, 30):
        np.testing.assert_allclose(got[f"momentum_{n}d"], close / close.shift(24 * n) - 1, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(got[f"momentum_{n}"], close / close.shift(n) - 1, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got["log_return_1d"], np.log(close / close.shift(24)), rtol=1e-12)

    daily, _ = DATASETS["yahoo_1d"]()
    d = compute_technical_features(daily, "1d")
    for n in (30, 60, 90):
        np.testing.assert_array_equal(d[f"volatility_{n}d"], d[f"volatility_{n}"])
    for n in (5, 10, 30):
        np.testing.assert_array_equal(d[f"momentum_{n}d"], d[f"momentum_{n}"])


def test_realized_volatility_formulas_and_levels():
    bars, _ = DATASETS["real_1h"]()
    got = compute_technical_features(bars, "1h")
    o, h, l, c = (bars[k].to_numpy() for k in ["open", "high", "low", "close"])
    i, n = 3000, 30
    w = slice(i - n + 1, i + 1)
    hl2 = np.log(h[w] / l[w]) ** 2
    co2 = np.log(c[w] / o[w]) ** 2
    assert got["parkinson_vol_30"].iloc[i] == pytest.approx(np.sqrt(hl2.mean() / (4 * np.log(2)) * 8760), rel=1e-9)
    gk = np.sqrt(np.mean(0.5 * hl2 - (2 * np.log(2) - 1) * co2) * 8760)
    assert got["garman_klass_vol_30"].iloc[i] == pytest.approx(gk, rel=1e-9)
    assert got["parkinson_vol_30d"].iloc[:719].isna().all() and got["parkinson_vol_30d"].iloc[719:].notna().all()

    # On the generated market (Brownian paths, 60 % annual volatility, exact intrabar extremes) the
    # three estimators all find the generator's volatility.
    minutes = GeneratedMarket(7).minutes("BTC-USD", "2021-01-01", "2021-02-15").assign(symbol="BTC-USD")
    estimators = ["volatility_30d", "parkinson_vol_30d", "garman_klass_vol_30d"]
    g = compute_technical_features(minutes, "1m", columns=estimators)
    for col in estimators:
        assert np.nanmedian(g[col]) == pytest.approx(0.60, abs=0.05), col


# ---------------------------------------------------------------------------------------- alpha158


def _windows(x: pd.Series, d: int) -> np.ndarray:
    """Rows t-d+1..t of x for each t >= d-1, as a (len - d + 1, d) view."""
    return np.lib.stride_tricks.sliding_window_view(x.to_numpy(dtype="float64"), d)


def _per_window(values: np.ndarray, n: int, d: int) -> np.ndarray:
    return np.concatenate([np.full(min(d - 1, n), np.nan), values])


def qlib_reference(b: pd.DataFrame) -> dict[str, pd.Series]:
    """qlib's Alpha158 expressions transcribed in pandas/numpy, with full windows (min_periods=d).

    Std and Corr are computed window by window (two passes), the textbook way: pandas' own rolling
    std/corr carry running-sum rounding of up to ~1e-7 on long price histories.
    """
    C, O, H, L, V = (b[k].reset_index(drop=True) for k in ["close", "open", "high", "low", "volume"])
    n = len(C)
    ref = {"kmid": (C - O) / O, "klen": (H - L) / O, "kup": (H - np.maximum(O, C)) / O,
           "klow": (np.minimum(O, C) - L) / O, "ksft": (2 * C - H - L) / O}
    prev = C.shift(1)
    up = (C > prev).astype("float64").where(prev.notna())
    logv = np.log(V + 1)
    for d in (5, 10, 20, 30, 60):
        def r(x):
            return x.rolling(d, min_periods=d)
        wc, wv = _windows(C, d), _windows(logv, d)
        dc, dv = wc - wc.mean(axis=1, keepdims=True), wv - wv.mean(axis=1, keepdims=True)
        ssc, ssv = (dc * dc).sum(axis=1), (dv * dv).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = (dc * dv).sum(axis=1) / np.sqrt(ssc * ssv)
        ref[f"roc_{d}"] = C.shift(d) / C
        ref[f"ma_{d}"] = r(C).mean() / C
        ref[f"std_{d}"] = pd.Series(_per_window(np.sqrt(ssc / (d - 1)), n, d)) / C
        ref[f"rsv_{d}"] = (C - r(L).min()) / (r(H).max() - r(L).min() + 1e-12)
        ref[f"corr_{d}"] = pd.Series(_per_window(corr, n, d))
        ref[f"cntp_{d}"] = r(up).mean()
        ref[f"sump_{d}"] = r((C - prev).clip(lower=0)).sum() / (r((C - prev).abs()).sum() + 1e-12)
    return ref


@pytest.mark.parametrize("dataset", ["real_1h", "real_1m", "generated_1h_gap"])
def test_alpha158_follows_qlib_formulas(dataset):
    bars, tf = DATASETS[dataset]()
    got = compute_technical_features(bars, tf)
    for col, expected in qlib_reference(bars).items():
        g, e = got[col].to_numpy(), expected.to_numpy()
        kind, d = (col.split("_") + ["1"])[:2]
        if kind == "corr":
            # NaN exactly where the close or the volume is constant over the window.
            flat_c = bars["close"].rolling(int(d)).apply(lambda w: w.min() == w.max(), raw=True)
            flat_v = bars["volume"].rolling(int(d)).apply(lambda w: w.min() == w.max(), raw=True)
            assert (np.isnan(g) == ((flat_c != 0) | (flat_v != 0)).to_numpy()).all(), col
            ok = ~np.isnan(g)
            np.testing.assert_allclose(g[ok], e[ok], rtol=0, atol=1e-12, err_msg=col)
        else:
            np.testing.assert_allclose(g, e, rtol=1e-9, atol=1e-15, err_msg=col)
        first = int(np.argmax(~np.isnan(g)))
        assert first == (int(d) if kind in {"roc", "cntp", "sump"} else int(d) - 1), col


def test_flat_stretch_gives_exact_values():
    """A filled gap (constant price, no volume) gives clean zeros and NaNs, not rounding noise."""
    bars, _ = DATASETS["generated_1h_gap"]()  # rows 1500..1559 are flat
    got = compute_technical_features(bars, "1h").iloc[1500 + 60 - 5: 1560]
    for col in ["volatility_30", "parkinson_vol_30", "garman_klass_vol_30", "kmid", "klen", "ksft",
                "log_return_1", "pct_return_1", "momentum_5", "std_5", "std_30", "cntp_30", "sump_30",
                "rsv_30", "bb_wband", "log_volume"]:
        assert (got[col] == 0).all(), col
    for col in ["corr_5", "corr_30", "volume_ratio_20", "mfi_14", "vwap_14", "bb_pband"]:
        assert got[col].isna().all(), col
    assert (got["roc_5"] == 1).all()
    np.testing.assert_allclose(got["ma_5"], 1.0, rtol=1e-15)


# ---------------------------------------------------------------------------------------- no look-ahead


@pytest.mark.parametrize("dataset,cuts", [
    ("generated_1h_gap", [1, 2, 13, 14, 15, 27, 28, 60, 61, 200, 201, 721, 1530, 2161, 2500]),
    ("real_4h", [1, 5, 26, 34, 199, 541, 1000, 2999]),
])
def test_no_look_ahead_in_any_column(dataset, cuts):
    """Features of rows[:k] equal the first k rows of the features of all rows, for every column."""
    bars, tf = DATASETS[dataset]()
    full = compute_technical_features(bars, tf)
    assert full[FEATURE_COLUMNS].notna().any().all()
    for k in cuts:
        part = compute_technical_features(bars.iloc[:k], tf)
        pd.testing.assert_frame_equal(part, full.iloc[:k], check_exact=True)


def test_changing_the_future_changes_no_past_value():
    bars, tf = DATASETS["real_4h"]()
    full = compute_technical_features(bars, tf)
    rng = np.random.default_rng(0)
    for k in (30, 700, 2000):
        changed = bars.copy()
        noise = np.exp(rng.normal(0, 0.2, len(bars) - k))
        for col in OHLCV:
            changed.loc[k:, col] = changed.loc[k:, col].to_numpy() * noise
        got = compute_technical_features(changed, tf)
        pd.testing.assert_frame_equal(got.iloc[:k], full.iloc[:k], check_exact=True)
        assert not got.iloc[k:][FEATURE_COLUMNS].equals(full.iloc[k:][FEATURE_COLUMNS])


# ---------------------------------------------------------------------------------------- incremental


def test_lookback_bars_per_timeframe():
    assert lookback_bars("1h") == 90 * 24  # volatility_90d: 2160 returns need 2160 earlier closes
    assert lookback_bars("4h") == 90 * 6
    assert lookback_bars("15m") == 90 * 96
    assert lookback_bars("1d") == EMA_SETTLE_BARS  # the recursions dominate on daily bars
    assert lookback_bars("1h", ["sma_200"]) == 199
    assert lookback_bars("1h", ["rsi_14"]) == EMA_SETTLE_BARS
    assert lookback_bars("1h", ["kmid", "log_volume"]) == 0
    assert lookback_bars("1h", ["momentum_30d", "roc_60"]) == 720


LONG_DATASETS = {
    "real_1h": lambda: (_freqtrade("BTC_USDT-1h.json.gz", 6000), "1h"),
    "real_4h": DATASETS["real_4h"],
    "real_1d": DATASETS["real_1d"],
    "generated_15m": lambda: (generated("15min", 110), "15m"),
}


@pytest.mark.parametrize("dataset", list(LONG_DATASETS))
def test_a_day_with_lookback_equals_the_full_history(dataset):
    bars, tf = LONG_DATASETS[dataset]()
    per_day, lookback = bars_per_day(tf), lookback_bars(tf)
    full = compute_technical_features(bars, tf)
    starts = [lookback + 7, (lookback + len(bars) - per_day) // 2, len(bars) - per_day]
    for p in starts:
        part = compute_technical_features(bars.iloc[p - lookback: p + per_day], tf).iloc[lookback:]
        ref = full.iloc[p: p + per_day]
        for col in FEATURE_COLUMNS:
            a, b = part[col].to_numpy(), ref[col].to_numpy()
            assert (np.isnan(a) == np.isnan(b)).all(), (col, p)
            if col in START_INDEPENDENT:
                np.testing.assert_array_equal(a, b, err_msg=col)
            else:
                # Window sums leave rounding only (1e-12), the recursions' forgotten start 1e-9: of
                # the value or of the column's typical size, whichever is larger.
                tol = 1e-9 if col in RECURSIVE_COLUMNS else 1e-12
                scale = np.nanmedian(np.abs(full[col].to_numpy()))
                assert np.nanmax(np.abs(a - b) - tol * (np.abs(b) + scale), initial=0) <= 0, (col, p)

    # The finite part of the bound is tight: one bar less and the longest window is one close short.
    col = "volatility_90d"
    p = starts[-1]
    need = lookback_bars(tf, [col])
    enough = compute_technical_features(bars.iloc[p - need: p + 1], tf)[col].iloc[-1]
    short = compute_technical_features(bars.iloc[p - need + 1: p + 1], tf)[col].iloc[-1]
    assert enough == pytest.approx(full[col].iloc[p], rel=1e-9) and np.isnan(short)


def test_recursive_columns_need_their_settle_bars():
    """With far fewer than EMA_SETTLE_BARS of lookback the recursive columns are visibly off."""
    bars, tf = DATASETS["real_1h"]()
    full = compute_technical_features(bars, tf, columns=sorted(RECURSIVE_COLUMNS))
    p = 3000
    for lookback, off in [(60, True), (EMA_SETTLE_BARS, False)]:
        part = compute_technical_features(bars.iloc[p - lookback: p + 24], tf, columns=sorted(RECURSIVE_COLUMNS))
        err = max(np.nanmax(np.abs(part[c].to_numpy()[lookback:] - full[c].to_numpy()[p: p + 24])
                            / np.abs(full[c].to_numpy()[p: p + 24])) for c in ["adx_14", "rsi_14", "atr_14"])
        assert (err > 1e-6) if off else (err < 1e-9), (lookback, err)


# ---------------------------------------------------------------------------------------- subsets, errors


def test_any_subset_equals_the_full_computation():
    bars, tf = DATASETS["generated_1h_gap"]()
    full = compute_technical_features(bars, tf)
    subset = ["sump_60", "rsi_14", "volatility_90d", "ma_20", "sma_20"]
    got = compute_technical_features(bars, tf, columns=subset)
    assert list(got.columns) == ["ts", "symbol", "close", *subset]
    pd.testing.assert_frame_equal(got, full[["ts", "symbol", "close", *subset]], check_exact=True)
    for col in FEATURE_COLUMNS:
        one = compute_technical_features(bars, tf, columns=[col])
        np.testing.assert_array_equal(one[col].to_numpy(), full[col].to_numpy(), err_msg=col)


def test_input_errors():
    bars, tf = DATASETS["generated_15m"]()
    with pytest.raises(ValueError, match="unknown feature columns"):
        compute_technical_features(bars, tf, columns=["rsi_14", "rsi_15"])
    with pytest.raises(ValueError, match="sorted"):
        compute_technical_features(bars.iloc[::-1], tf)
    two = pd.concat([bars.iloc[:10], bars.iloc[10:20].assign(symbol="ETH-USD")])
    with pytest.raises(ValueError, match="one symbol"):
        compute_technical_features(two, tf)
    no_volume = bars.drop(columns=["volume"])
    with pytest.raises(KeyError, match="volume"):
        compute_technical_features(no_volume, tf)
    only_close = compute_technical_features(bars[["ts", "symbol", "close"]], tf, columns=["rsi_14", "sma_20"])
    assert only_close["rsi_14"].notna().sum() == len(bars) - 13
