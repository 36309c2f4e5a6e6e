"""Outages leave degraded partitions; when the vendor answers again, the sensor re-runs exactly those."""

from datetime import date

import dagster as dg
import pytest

from btc_platform.defs.partitions import multi_key, range_tags
from btc_platform.defs.vendor_status.sensors import vendor_access_restored
from btc_platform.lake import Lake, PartitionRef
from btc_platform.sandbox.cryptoquant import deny_hourly, grant_hourly
from btc_platform.vendor_status import VendorStatusStore

DAY1, DAY2, DAY3 = date(2024, 3, 4), date(2024, 3, 5), date(2024, 3, 6)


def tick(instance):
    from btc_platform.definitions import defs
    from btc_platform.defs.resources import build_resources

    with dg.build_sensor_context(instance=instance, definitions=defs, resources=build_resources()) as context:
        return vendor_access_restored(context)


def requested(result) -> set[tuple[str, str]]:
    assert isinstance(result, dg.SensorResult), result
    return {(r.asset_selection[0].to_user_string(), r.partition_key) for r in result.run_requests}


@pytest.fixture
def status(platform_env):
    return VendorStatusStore(Lake(platform_env["BTC_PLATFORM_LAKE_URL"]))


def test_cryptoquant_hourly_restored_reruns_exactly_the_fallback_days(run, instance, clean_sandbox, status,
                                                                        platform_env):
    deny_hourly(clean_sandbox)
    run(["cryptoquant_onchain_metrics"], tags=range_tags(DAY1, DAY2))
    lake = Lake(platform_env["BTC_PLATFORM_LAKE_URL"])
    day1 = lake.read(PartitionRef("raw", "cryptoquant_onchain", DAY1))
    assert set(day1["window"]) == {"day"} and day1["is_fallback"].any()
    assert status.get("cryptoquant", "exchange_flows_hour").status == "not_entitled"

    grant_hourly(clean_sandbox)
    run(["cryptoquant_onchain_metrics"], DAY3.isoformat())  # served hourly: not degraded
    deny_hourly(clean_sandbox)
    still = tick(instance)
    assert isinstance(still, dg.SkipReason) and "none answers again" in still.skip_message

    grant_hourly(clean_sandbox)
    result = tick(instance)
    assert requested(result) == {("cryptoquant_onchain_metrics", DAY1.isoformat()),
                                 ("cryptoquant_onchain_metrics", DAY2.isoformat())}
    assert status.get("cryptoquant", "exchange_flows_hour").status == "ok"

    for request in result.run_requests:  # what the daemon would launch
        run(["cryptoquant_onchain_metrics"], request.partition_key)
    assert "hour" in set(lake.read(PartitionRef("raw", "cryptoquant_onchain", DAY1))["window"])
    assert status.degraded() == []
    assert isinstance(tick(instance), dg.SkipReason)


def test_coinapi_spot_falls_back_to_coinbase_and_funding_is_skipped_until_restored(
        run, instance, clean_sandbox, status, platform_env):
    key = multi_key(DAY1, "BTC-USD")
    run(["coinbase_candles_1m", "coinbase_candles_1m_quality", "candles_1h"], key)
    clean_sandbox.deny("coinapi", r"/v1/metrics", "not_entitled")
    clean_sandbox.deny("coinapi", r"/v1/ohlcv/COINBASE_SPOT", "no_access")

    result = run(["coinapi_spot_ohlcv_1h", "coinapi_funding_rates", "coinapi_perp_ohlcv_1h"], key)
    assert result.success  # not entitled is not an error that stops the rest
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"coinapi_spot_ohlcv_1h", "coinapi_perp_ohlcv_1h"}  # funding skipped
    spot = Lake(platform_env["BTC_PLATFORM_LAKE_URL"]).read(
        PartitionRef("raw", "coinapi_spot_ohlcv", DAY1, symbol="BTC-USD", interval="1h"))
    assert set(spot["source"]) == {"fallback:coinbase"} and len(spot) == 24
    assert status.get("coinapi", "funding_rate").status == "not_entitled"
    assert {(d.asset, d.how) for d in status.degraded()} == {("coinapi_spot_ohlcv_1h", "fallback"),
                                                             ("coinapi_funding_rates", "skipped")}

    clean_sandbox.grant("coinapi")
    assert requested(tick(instance)) == {("coinapi_spot_ohlcv_1h", str(key)), ("coinapi_funding_rates", str(key))}
