"""Ingest, quality checks and the processed layer, materialized for real against the sandbox."""

import math
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from btc_platform.defs.coinbase.assets import candles_ref
from btc_platform.defs.features.assets import processed_ref
from btc_platform.defs.partitions import multi_key, range_tags
from btc_platform.lake import Lake
from btc_platform.sandbox import FaultRule

DAY = date(2024, 1, 2)
KEY = multi_key(DAY, "BTC-USD")
INGEST = ["coinbase_candles_1m", "coinbase_candles_1m_quality"]


@pytest.fixture
def lake(platform_env):
    return Lake(platform_env["BTC_PLATFORM_LAKE_URL"])


def data_columns(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["ingested_at"])  # when it was fetched is lineage, not content


def metadata(result, key):
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(key)]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_a_partition_is_ingested_checked_and_resampled(run, lake):
    result = run([*INGEST, "candles_1h"], KEY)
    meta = metadata(result, "coinbase_candles_1m")
    assert meta["pages"] == 5 and meta["dagster/row_count"] > 1380
    candles = lake.read(candles_ref(DAY, "BTC-USD"))
    assert len(candles) == meta["dagster/row_count"]
    assert candles["ts"].min() >= pd.Timestamp(DAY, tz="UTC")

    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == dict.fromkeys(["no_duplicates", "ohlc_valid", "within_partition", "no_future_timestamps",
                                    "coverage", "no_outliers", "raw_coverage"], True)
    summary = lake.read_json(candles_ref(DAY, "BTC-USD"), "_quality.json")
    assert summary["present_bars"] == len(candles) and summary["expected_bars"] == 1440
    assert summary["blocking_failures"] == []

    hourly = lake.read(processed_ref("candles", DAY, "BTC-USD"))
    assert len(hourly) == 24
    assert hourly["volume"].sum() == pytest.approx(candles["volume"].sum())


def test_rerunning_a_partition_gives_the_same_content(run, lake):
    run(INGEST, KEY)
    first = data_columns(lake.read(candles_ref(DAY, "BTC-USD")))
    run(INGEST, KEY)
    pd.testing.assert_frame_equal(data_columns(lake.read(candles_ref(DAY, "BTC-USD"))), first)


def test_a_burst_of_429_and_5xx_still_yields_the_same_data(run, lake, clean_sandbox):
    run(INGEST, KEY)
    clean = data_columns(lake.read(candles_ref(DAY, "BTC-USD")))
    clean_sandbox.set_faults([
        FaultRule("429", vendor="coinbase", count=2),
        FaultRule("503", vendor="coinbase", count=2),
        FaultRule("empty_500", vendor="coinbase", count=1),
    ])
    result = run(INGEST, KEY)
    assert metadata(result, "coinbase_candles_1m")["retries"] == 5
    pd.testing.assert_frame_equal(data_columns(lake.read(candles_ref(DAY, "BTC-USD"))), clean)


def test_a_malformed_page_fails_the_partition_and_keeps_what_was_good(run, lake, clean_sandbox):
    run(INGEST, KEY)
    good = lake.read(candles_ref(DAY, "BTC-USD"))
    other_day = date(2024, 1, 3)
    # The third page of each day comes back cut in half.
    clean_sandbox.set_faults([FaultRule("truncated", vendor="coinbase", path_regex=r"start=[^&]*T10%3A00")])
    for day in (DAY, other_day):
        result = run(INGEST, multi_key(day, "BTC-USD"), raise_on_error=False)
        assert not result.success
        [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
        message = failure.step_failure_data.error.to_string()
        assert "coinbase /products/{product_id}/candles" in message
        assert f"partition {day}|BTC-USD" in message and "not valid JSON" in message
    pd.testing.assert_frame_equal(lake.read(candles_ref(DAY, "BTC-USD")), good)  # the good day is intact
    assert lake.read(candles_ref(other_day, "BTC-USD")) is None  # the new day: nothing written


def test_duplicates_block_the_processed_layer(run, lake):
    run(INGEST, KEY)
    ref = candles_ref(DAY, "BTC-USD")
    candles = lake.read(ref)
    lake.write(ref, pd.concat([candles, candles.iloc[:3]], ignore_index=True))  # bad data lands somehow

    result = run(["coinbase_candles_1m_quality", "candles_1h"], KEY, raise_on_error=False)
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks["no_duplicates"] is False and checks["ohlc_valid"] is True
    assert dg.AssetKey("candles_1h") not in {e.asset_key for e in result.get_asset_materialization_events()}

    alone = run(["candles_1h"], KEY, raise_on_error=False)
    assert not alone.success
    assert "blocked by quality checks" in str(alone.all_events)


def test_targets_wait_for_the_days_they_look_ahead_to(run, lake):
    """Day D's 5-day targets need candles through D+5; then they equal the log ratios of closes."""
    run([*INGEST, "candles_1h"], tags=range_tags(DAY, DAY + timedelta(days=4), "BTC-USD"))
    early = run(["forward_targets_1h"], KEY, raise_on_error=False)
    assert not early.success and "need candles_1h through 2024-01-07" in str(early.all_events)

    run([*INGEST, "candles_1h"], multi_key(DAY + timedelta(days=5), "BTC-USD"))
    run(["forward_targets_1h", "technical_features_1h"], KEY)
    targets = lake.read(processed_ref("forward_targets", DAY, "BTC-USD"))
    bars = lake.read_many([processed_ref("candles", DAY + timedelta(days=n), "BTC-USD") for n in range(6)])
    close = bars.set_index("ts")["close"]
    assert len(targets) == 24 and targets["target_return_5d"].notna().all()
    first = targets["ts"].iloc[0]
    for horizon in ("1h", "24h", "3d", "5d"):
        expected = math.log(close[first + pd.Timedelta(horizon)] / close[first])
        assert targets[f"target_return_{horizon}"].iloc[0] == pytest.approx(expected, rel=1e-12)
    assert set(targets["target_label_24h"]) <= {"sell", "hold", "buy"}
    features = lake.read(processed_ref("technical_features", DAY, "BTC-USD"))
    assert len(features) == 24 and features["rsi_14"].notna().sum() > 0


def test_warehouse_load_replaces_its_partition(run, platform_env):
    from btc_platform.warehouse.duckdb_store import table_row_count

    run([*INGEST, "warehouse_coinbase_candles_1m"], KEY)
    once = table_row_count(platform_env["BTC_PLATFORM_DUCKDB_PATH"], "raw.coinbase_candles_1m")
    run(["warehouse_coinbase_candles_1m"], KEY)
    assert table_row_count(platform_env["BTC_PLATFORM_DUCKDB_PATH"], "raw.coinbase_candles_1m") == once > 1380


def test_coverage_report_charts_the_checked_days(run, lake, platform_env):
    run(INGEST, KEY)
    run(INGEST, multi_key(DAY, "ETH-USD"))
    result = run(["coverage_report"])
    meta = metadata(result, "coverage_report")
    assert meta["days"] == 1 and set(meta["datasets"]) == {"coinbase_candles_1m BTC-USD", "coinbase_candles_1m ETH-USD"}
    png = (Path(platform_env["BTC_PLATFORM_LAKE_URL"]) / "_reports/coverage/coverage.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and meta["chart"].startswith("![coverage")
    assert 0.9 < meta["lowest_coverage"] <= 1.0


def test_every_timeframe_and_the_1h_rows_see_only_closed_higher_bars(run, lake):
    tfs = ["5m", "15m", "1h", "4h", "1d"]
    run([*INGEST, *(f"candles_{tf}" for tf in tfs), *(f"technical_features_{tf}" for tf in tfs),
         "multi_timeframe_features_1h"], tags=range_tags(DAY, DAY + timedelta(days=1), "BTC-USD"))
    day2 = DAY + timedelta(days=1)
    rows = {tf: len(lake.read(processed_ref("technical_features", day2, "BTC-USD", tf))) for tf in tfs}
    assert rows == {"5m": 288, "15m": 96, "1h": 24, "4h": 6, "1d": 1}
    assert len(lake.read(processed_ref("technical_features", day2, "BTC-USD", "1h")).columns) > 50 + 3

    mtf = lake.read(processed_ref("multi_timeframe_features", day2, "BTC-USD")).set_index("ts")
    h4 = lake.read_many([processed_ref("technical_features", d, "BTC-USD", "4h") for d in (DAY, day2)]).set_index("ts")
    start = pd.Timestamp(day2, tz="UTC")
    # The 00:00-04:00 bar closes at 04:00: first visible on the 03:00 hour (closing 04:00), not before.
    assert mtf.loc[start + pd.Timedelta(hours=3), "momentum_5_4h"] == h4.loc[start, "momentum_5"]
    assert mtf.loc[start + pd.Timedelta(hours=2), "momentum_5_4h"] == h4.loc[start - pd.Timedelta(hours=4), "momentum_5"]
    # The day's own 1d bar closes at midnight: only the last hour sees it; earlier hours see yesterday's.
    d1 = lake.read_many([processed_ref("technical_features", d, "BTC-USD", "1d") for d in (DAY, day2)]).set_index("ts")
    assert d1.loc[start, "kmid"] != d1.loc[start - pd.Timedelta(days=1), "kmid"]
    assert mtf.loc[start + pd.Timedelta(hours=23), "kmid_1d"] == d1.loc[start, "kmid"]
    assert (mtf.loc[start:start + pd.Timedelta(hours=22), "kmid_1d"] == d1.loc[start - pd.Timedelta(days=1), "kmid"]).all()


def test_targets_from_the_next_bar_wait_one_more_day_and_shift_the_entry(run, lake):
    from btc_platform.defs.features.assets import SHORT_HORIZONS, forward_targets_asset
    from btc_platform.defs.resources import LakeResource

    later = forward_targets_asset("forward_targets_next_bar_1h", SHORT_HORIZONS, label_horizon="24h",
                                  entry="close_t+1")
    from btc_platform.defs.automation import LookAhead

    def nodes(condition):
        yield condition
        for child in condition.children:
            yield from nodes(child)

    # The look-ahead lives in the automation condition (not a partition mapping): D+5d+1h reaches D+6.
    assert {c.days for c in nodes(later.automation_conditions_by_key[later.key]) if isinstance(c, LookAhead)} == {6}
    run([*INGEST, "candles_1h"], tags=range_tags(DAY, DAY + timedelta(days=6), "BTC-USD"))
    dg.materialize([later], partition_key=str(KEY), resources={"lake": LakeResource(url=lake.url)})
    targets = lake.read(processed_ref("forward_targets_next_bar", DAY, "BTC-USD"))
    close = lake.read_many([processed_ref("candles", DAY + timedelta(days=n), "BTC-USD") for n in range(7)]) \
        .set_index("ts")["close"]
    first = targets["ts"].iloc[0]
    entry = close[first + pd.Timedelta(hours=1)]
    assert targets["target_return_1h"].iloc[0] == pytest.approx(math.log(close[first + pd.Timedelta(hours=2)] / entry))
