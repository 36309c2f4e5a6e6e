"""technical_features_<tf> after a blocked day, and runs that hold several products' days."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from btc_platform.defs.features.assets import processed_ref, technical_features
from btc_platform.defs.partitions import multi_key
from btc_platform.defs.resources import LakeResource
from btc_platform.features import resample_ohlcv
from btc_platform.lake import Lake
from btc_platform_tests.conftest import shared_data

FIRST, BLOCKED, LAST = date(2024, 1, 1), date(2024, 1, 5), date(2024, 1, 8)
PRICE_SCALE = {"BTC-USD": 1.0, "ETH-USD": 0.05}


@pytest.fixture(scope="module")
def minutes() -> pd.DataFrame:
    raw = pd.read_csv(shared_data("candles_1m_btcusdt", "BTCUSDT-1m-2024-01.csv.gz"), header=None,
                      usecols=range(6), names=["ms", "open", "high", "low", "close", "volume"])
    return raw.assign(ts=pd.to_datetime(raw.pop("ms"), unit="ms", utc=True), source="binance")


@pytest.fixture
def lake(tmp_path, minutes) -> Lake:
    """candles_1h of both products for FIRST..LAST, except the blocked day (its check stopped it)."""
    store = Lake(str(tmp_path / "lake"))
    for symbol, scale in PRICE_SCALE.items():
        prices = minutes.assign(symbol=symbol, **{c: minutes[c] * scale for c in ("open", "high", "low", "close")})
        for n in range((LAST - FIRST).days + 1):
            day = FIRST + timedelta(days=n)
            if day != BLOCKED:
                start = pd.Timestamp(day, tz="UTC")
                bars = resample_ohlcv(prices, "1h", start, start + pd.Timedelta("1D"), symbol=symbol)
                store.write(processed_ref("candles", day, symbol), bars)
    return store


def materialize(lake: Lake, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize([technical_features["1h"]], resources={"lake": LakeResource(url=lake.url)},
                          raise_on_error=False, **kwargs)


def test_the_day_after_a_blocked_day_respects_the_hole_and_names_it(lake):
    after = BLOCKED + timedelta(days=1)
    result = materialize(lake, partition_key=str(multi_key(after, "BTC-USD")))
    assert result.success
    meta = result.asset_materializations_for_node("technical_features_1h")[0].metadata
    assert "2024-01-05" in meta["lookback_missing_days"].value and meta["lookback_complete"].value is False
    rows = lake.read(processed_ref("technical_features", after, "BTC-USD"))
    assert len(rows) == 24 and rows["lookback_gap"].all()
    assert np.isnan(rows["log_return_1"].iloc[0])  # not a 25-hour return across the blocked day
    closes = lake.read(processed_ref("candles", after, "BTC-USD"))["close"].to_numpy()
    np.testing.assert_allclose(rows["log_return_1"].iloc[1:], np.log(closes[1:] / closes[:-1]), rtol=1e-12)


def test_the_blocked_day_itself_refuses_with_its_date(lake):
    result = materialize(lake, partition_key=str(multi_key(BLOCKED, "BTC-USD")))
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "candles_1h of BTC-USD for 2024-01-05 is missing" in failure.event_specific_data.error.message


def test_a_run_over_two_products_computes_each_from_its_own_bars(lake):
    tags = {"dagster/asset_partition_range_start": str(multi_key(date(2024, 1, 7), "BTC-USD")),
            "dagster/asset_partition_range_end": str(multi_key(LAST, "ETH-USD"))}
    assert materialize(lake, tags=tags).success
    for symbol in PRICE_SCALE:
        for day in (date(2024, 1, 7), LAST):
            rows = lake.read(processed_ref("technical_features", day, symbol))
            candles = lake.read(processed_ref("candles", day, symbol))
            assert rows is not None, (symbol, day)
            assert (rows["symbol"] == symbol).all()
            np.testing.assert_array_equal(rows["close"].to_numpy(), candles["close"].to_numpy())
