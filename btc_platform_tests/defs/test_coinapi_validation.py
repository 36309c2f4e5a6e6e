"""CoinAPI bars get Coinbase's OHLC and coverage checks, and CoinAPI's hourly spot volume reaches the
quality summary of Coinbase's candles as evidence."""

import json
from datetime import date, datetime, timedelta, timezone

import pytest

from btc_platform.defs.coinapi.assets import coinapi_ref
from btc_platform.defs.coinbase.assets import candles_ref
from btc_platform.defs.partitions import multi_key
from btc_platform.lake import Lake
from btc_platform.sandbox.coinapi import CoinAPI

DAY = date(2024, 1, 2)
KEY = multi_key(DAY, "BTC-USD")


@pytest.fixture
def lake(platform_env):
    return Lake(platform_env["BTC_PLATFORM_LAKE_URL"])


def test_coinapi_bars_with_high_below_low_are_refused_and_not_written(run, lake, monkeypatch):
    real = CoinAPI._bars

    def broken(self, *args):
        rows = real(self, *args)
        if rows:
            rows[3]["price_high"], rows[3]["price_low"] = rows[3]["price_low"] - 1, rows[3]["price_high"]
            rows[5]["price_close"] = -rows[5]["price_close"]
        return rows

    monkeypatch.setattr(CoinAPI, "_bars", broken)
    result = run(["coinapi_perp_ohlcv_1h"], KEY, raise_on_error=False)
    assert not result.success
    assert lake.read(coinapi_ref("coinapi_perp_ohlcv", DAY, "BTC-USD")) is None
    failure = json.dumps([str(e.event_specific_data) for e in result.all_events if e.is_step_failure])
    assert "2 rows break OHLC sanity" in failure and "2024-01-02|BTC-USD" in failure


def test_coinapi_days_carry_a_quality_summary(run, lake):
    run(["coinapi_perp_ohlcv_1h"], KEY)
    summary = lake.read_json(coinapi_ref("coinapi_perp_ohlcv", DAY, "BTC-USD"), "_quality.json")
    assert summary["expected_bars"] == 24 and summary["coverage"] == 1.0 and summary["blocking_failures"] == []


def test_a_hole_coinbase_lost_is_missing_by_coinapis_volume(run, lake, clean_sandbox):
    twin = clean_sandbox.vendors["coinbase"]
    start = datetime(2024, 1, 2, tzinfo=timezone.utc).timestamp()
    for back in (1, 2):   # clean history: the product's profile (trades in ~99.5% of minutes)
        run(["coinbase_candles_1m"], multi_key(DAY - timedelta(days=back), "BTC-USD"))
    twin.set_holes(20)
    try:
        holes = twin.holes("BTC-USD", start, start + 86_400)
        run(["coinapi_spot_ohlcv_1h"], KEY)          # CoinAPI still reports the lost minutes
        run(["coinbase_candles_1m", "coinbase_candles_1m_quality"], KEY)
    finally:
        twin.set_holes(0)
    summary = lake.read_json(candles_ref(DAY, "BTC-USD"), "_quality.json")
    assert summary["reference_bars"] == 24
    missing = {t for g in summary["gaps"] if g["kind"] == "missing"
               for t in range(int(datetime.fromisoformat(g["start"]).timestamp()),
                              int(datetime.fromisoformat(g["end"]).timestamp()), 60)}
    # A lost minute alone may pass as one of BTC-USD's rare quiet minutes (an hour's volume cannot tell
    # it from an empty one); any longer hole is missing, by the profile or by CoinAPI's volume.
    lost = {t for a, b in holes if b - a > 60 for t in range(a, b, 60)}
    assert len(holes) == 20 and len(lost) > 60 and lost <= missing
    assert summary["liquidity"]["source"] == "history" and summary["max_quiet_bars"] == 1
