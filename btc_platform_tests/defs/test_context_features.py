"""Macro, on-chain, sentiment and market-structure features on the 1-hour grid, from the lake."""

from datetime import date, timedelta

import dagster as dg
import pandas as pd

from btc_platform.defs.partitions import HISTORY_START, range_tags
from btc_platform.features.alignment import MACRO_COLUMNS
from btc_platform.lake import Lake, PartitionRef

FIRST, LAST = date(2024, 3, 4), date(2024, 3, 5)


def test_context_features_join_every_vendor_as_known_at_each_bar(run, instance, clean_sandbox, platform_env):
    run(["coinbase_candles_1m", "coinbase_candles_1m_quality", "candles_1h"], tags=range_tags(FIRST, LAST, "BTC-USD"))
    run(["coinapi_spot_ohlcv_1h", "coinapi_perp_ohlcv_1h", "coinapi_funding_rates"],
        tags=range_tags(FIRST - timedelta(days=8), LAST, "BTC-USD"))
    run(["fred_vintages"], HISTORY_START.isoformat())  # everything published before the history starts
    # YoY needs the year-earlier value as then known: the vintages of the 400 days the asset reads.
    run(["fred_vintages"], tags=range_tags(FIRST - timedelta(days=400), LAST))
    run(["alphavantage_daily", "cryptoquant_onchain_metrics", "fear_greed_index"],
        tags=range_tags(FIRST - timedelta(days=21), LAST))
    run(["context_features_1h"], tags=range_tags(FIRST, LAST, "BTC-USD"))
    freshness = run(["series_freshness"])
    checks = {c.check_name: c.passed for c in freshness.get_asset_check_evaluations()}
    assert checks == dict.fromkeys(["fred_vintages_fresh", "alphavantage_daily_fresh",
                                    "cryptoquant_onchain_metrics_fresh", "fear_greed_index_fresh"], True)
    # Recorded as ingested through June while its data stops in March: the series went stale.
    instance.report_runless_asset_event(dg.AssetMaterialization("fear_greed_index", partition="2024-06-01"))
    stale = {c.check_name: c for c in run(["series_freshness"]).get_asset_check_evaluations()}
    assert not stale["fear_greed_index_fresh"].passed and stale["fred_vintages_fresh"].passed

    lake = Lake(platform_env["BTC_PLATFORM_LAKE_URL"])
    day = lake.read(PartitionRef("processed", "context_features", FIRST, symbol="BTC-USD", interval="1h"))
    assert len(day) == 24 and day["ts"].is_monotonic_increasing
    for column in ("us10y_yield", "cpi_yoy", "unemployment_rate", "fed_funds", "vix"):
        assert day[column].notna().all(), column
    assert day["gold_price"].isna().all()  # no vendor in the plan has gold: null, never invented
    assert (day["cpi_yoy_age_hours"] > 0).all()
    assert day["fear_greed_index"].notna().all()
    assert day["funding_rate"].notna().all() and day["funding_rate_zscore_7d"].notna().any()
    assert day["perp_spot_basis"].notna().all()
    assert set(MACRO_COLUMNS) <= set(day.columns)
    # Known when the bar closed: no value is younger than zero hours.
    ages = day[[c for c in day.columns if c.endswith("_age_hours")]]
    assert (ages.fillna(0) >= 0).all().all()
    assert pd.Timestamp(FIRST, tz="UTC") == day["ts"].iloc[0]
