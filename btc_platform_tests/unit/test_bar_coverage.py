"""Coverage travels with the bar: a partial hour (22 of 60 minutes) keeps its prices but not its
volume features, and the training data says which rows were built on partial bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btc_platform.datasets.text_encoder import describe_market_state
from btc_platform.features import compute_technical_features, resample_ohlcv
from btc_platform.features.grid import technical_features_on_grid
from btc_platform.features.technical import FEATURE_COLUMNS, VOLUME_COLUMNS
from btc_platform_tests.conftest import shared_data

START = pd.Timestamp("2024-01-01", tz="UTC")
DAYS = 10
PARTIAL = pd.Timestamp("2024-01-08 14:00", tz="UTC")  # keeps its first 22 minutes


@pytest.fixture(scope="module")
def minutes() -> pd.DataFrame:
    raw = pd.read_csv(shared_data("candles_1m_btcusdt", "BTCUSDT-1m-2024-01.csv.gz"), header=None,
                      usecols=range(6), names=["ms", "open", "high", "low", "close", "volume"])
    out = raw.assign(ts=pd.to_datetime(raw.pop("ms"), unit="ms", utc=True), symbol="BTC-USD", source="binance")
    return out[out["ts"] < START + pd.Timedelta(days=DAYS)].reset_index(drop=True)


def hourly(minutes: pd.DataFrame) -> pd.DataFrame:
    return resample_ohlcv(minutes, "1h", START, START + pd.Timedelta(days=DAYS))


def lose_minutes(minutes: pd.DataFrame) -> pd.DataFrame:
    lost = (minutes["ts"] >= PARTIAL + pd.Timedelta("22min")) & (minutes["ts"] < PARTIAL + pd.Timedelta("1h"))
    return minutes[~lost].reset_index(drop=True)


def test_each_bar_carries_its_minute_coverage(minutes):
    full, partial = hourly(minutes), hourly(lose_minutes(minutes))
    assert (full["bar_coverage"] == 1.0).all()  # every real minute of these days traded
    row = partial.set_index("ts").loc[PARTIAL]
    assert row["n_source_bars"] == 22 and row["bar_coverage"] == pytest.approx(22 / 60)
    daily = resample_ohlcv(lose_minutes(minutes), "1D", START, START + pd.Timedelta(days=DAYS)).set_index("ts")
    assert daily.loc[PARTIAL.normalize(), "bar_coverage"] == pytest.approx((1440 - 38) / 1440)


def test_a_partial_hour_loses_its_volume_features_not_its_prices(minutes):
    bars = hourly(lose_minutes(minutes))
    end = START + pd.Timedelta(days=DAYS)
    got = technical_features_on_grid(bars, "1h", START, end).set_index("ts")
    plain = compute_technical_features(bars, "1h").set_index("ts")
    # Read as real, the 22 minutes look like a collapse in activity.
    assert plain.loc[PARTIAL, "volume_ratio_20"] < 0.6
    row = got.loc[PARTIAL]
    assert row["partial_bar"] and row[VOLUME_COLUMNS].isna().all()
    others = [c for c in FEATURE_COLUMNS if c not in VOLUME_COLUMNS]
    pd.testing.assert_series_equal(row[others].astype(float), plain.loc[PARTIAL, others].astype(float),
                                   check_names=False)
    # Only that bar: the full bars around it keep every value, and the flag is false there.
    assert got["partial_bar"].sum() == 1
    rest = got.index != PARTIAL
    pd.testing.assert_frame_equal(got.loc[rest, FEATURE_COLUMNS], plain.loc[rest, FEATURE_COLUMNS], check_exact=True)
    # The prompt leaves the volume out instead of calling the hour quiet.
    assert "volume" in describe_market_state(plain.loc[PARTIAL].to_dict())
    assert "volume" not in describe_market_state(row.to_dict())


def test_the_threshold_is_a_setting(minutes):
    bars = hourly(lose_minutes(minutes))
    end = START + pd.Timedelta(days=DAYS)
    lenient = technical_features_on_grid(bars, "1h", START, end, min_coverage=0.3).set_index("ts")
    assert not lenient.loc[PARTIAL, "partial_bar"] and np.isfinite(lenient.loc[PARTIAL, "volume_ratio_20"])
    trusting = technical_features_on_grid(bars, "1h", START, end, min_coverage=None)
    assert not trusting["partial_bar"].any()


def test_candles_written_before_the_column_existed_use_n_source_bars(minutes):
    bars = hourly(lose_minutes(minutes)).drop(columns="bar_coverage")
    got = technical_features_on_grid(bars, "1h", START, START + pd.Timedelta(days=DAYS)).set_index("ts")
    assert got.loc[PARTIAL, "partial_bar"] and got["partial_bar"].sum() == 1
