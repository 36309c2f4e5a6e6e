"""Monitoring facts reach the warehouse and dbt's monitoring views show them over time."""

from datetime import date


from btc_platform.defs.partitions import multi_key, range_tags
from btc_platform.warehouse import read_table

DAYS = (date(2024, 1, 2), date(2024, 1, 3))


def views(run):
    from btc_platform.definitions import defs

    return [key.to_user_string() for key in defs.resolve_assets_def("coverage_by_day").keys]


def test_coverage_and_vendor_status_views(run, platform_env, clean_sandbox):
    run(["coinbase_candles_1m", "coinbase_candles_1m_quality", "warehouse_candle_quality"],
        tags=range_tags(*DAYS, "BTC-USD"))
    run(["fear_greed_index"], DAYS[0].isoformat())  # records the endpoint's status: ok
    run(["vendor_status", "warehouse_vendor_status"])
    result = run(views(run))
    assert result.success

    db = platform_env["BTC_PLATFORM_DUCKDB_PATH"]
    coverage = read_table(db, "monitoring.coverage_by_day").sort_values("day", ignore_index=True)
    assert [d.date() for d in coverage["day"]] == list(DAYS)
    assert set(coverage["symbol"]) == {"BTC-USD"}
    assert coverage["passed"].all() and (coverage["expected_bars"] == 1440).all()
    # Minutes without trades are not missing data: the three add up to the day.
    assert (coverage["present_bars"] + coverage["no_trade_bars"] + coverage["missing_bars"]
            == coverage["expected_bars"]).all()
    assert coverage["coverage"].between(0.9, 1.0).all()

    statuses = read_table(db, "monitoring.vendor_status_over_time")
    # Coinbase's calls (the ingested days) are tracked too, as every vendor's are.
    assert sorted(statuses[["vendor", "status"]].values.tolist()) == [["coinbase", "ok"], ["feargreed", "ok"]]
    assert not statuses["status_changed"].any()  # the first snapshot: nothing to compare with

    # Access lost the same day: that day's snapshot is replaced, not doubled.
    clean_sandbox.deny("feargreed", ".*", "no_access")
    run(["fear_greed_index"], DAYS[1].isoformat(), raise_on_error=False)
    run(["vendor_status", "warehouse_vendor_status"])
    statuses = read_table(db, "monitoring.vendor_status_over_time")
    assert sorted(statuses[["vendor", "status"]].values.tolist()) == [["coinbase", "ok"], ["feargreed", "no_access"]]
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks and all(checks.values()), checks  # dbt tests (keys, ranges, statuses) ran as asset checks


def test_a_reloaded_quality_day_replaces_its_row(run, platform_env):
    key = multi_key(DAYS[0], "BTC-USD")
    run(["coinbase_candles_1m", "coinbase_candles_1m_quality", "warehouse_candle_quality"], key)
    run(["warehouse_candle_quality"], key)
    rows = read_table(platform_env["BTC_PLATFORM_DUCKDB_PATH"], "raw.candle_quality")
    assert len(rows) == 1 and rows["blocking_failures"].iloc[0] == ""
