"""The quality gate reads the quality of the data it is about to use: a blocked partition never reaches
the warehouse, and a summary left from an earlier ingest does not pass re-ingested bad rows."""

from datetime import date

import dagster as dg
import pandas as pd
import pytest

from btc_platform.defs.coinbase.assets import candles_ref
from btc_platform.defs.partitions import multi_key
from btc_platform.lake import Lake
from btc_platform.warehouse.duckdb_store import read_table

DAY = date(2024, 1, 2)
KEY = multi_key(DAY, "BTC-USD")
REF = candles_ref(DAY, "BTC-USD")
INGEST = ["coinbase_candles_1m", "coinbase_candles_1m_quality"]
LOAD = "warehouse_coinbase_candles_1m"


@pytest.fixture
def lake(platform_env):
    return Lake(platform_env["BTC_PLATFORM_LAKE_URL"])


def land_bad_rows(lake: Lake) -> pd.DataFrame:
    """Rows with high < low and negative prices replace the partition (as a faulty re-ingest would)."""
    bad = lake.read(REF)
    bad.loc[:9, "high"] = bad.loc[:9, "low"] - 1.0
    bad.loc[10:19, ["open", "close"]] = -5.0
    lake.write(REF, bad)
    return bad


def warehouse_rows(platform_env) -> pd.DataFrame:
    return read_table(platform_env["BTC_PLATFORM_DUCKDB_PATH"], "raw.coinbase_candles_1m")


def failure_text(result) -> str:
    return " ".join(e.step_failure_data.error.to_string() for e in result.all_events
                    if e.event_type == dg.DagsterEventType.STEP_FAILURE)


def test_a_blocked_partition_is_not_loaded_in_the_same_run(run, lake, platform_env):
    run([*INGEST, LOAD], KEY)
    good = warehouse_rows(platform_env)
    land_bad_rows(lake)

    result = run(["coinbase_candles_1m_quality", LOAD], KEY, raise_on_error=False)
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks["ohlc_valid"] is False
    assert dg.AssetKey(LOAD) not in {e.asset_key for e in result.get_asset_materialization_events()}
    loaded = warehouse_rows(platform_env)
    assert len(loaded) == len(good) and (loaded["high"] >= loaded["low"]).all() and (loaded["close"] > 0).all()


def test_a_blocked_partition_is_refused_when_the_load_runs_alone(run, lake, platform_env):
    run(INGEST, KEY)
    land_bad_rows(lake)
    run(["coinbase_candles_1m_quality"], KEY, raise_on_error=False)  # records the block

    alone = run([LOAD], KEY, raise_on_error=False)
    assert not alone.success
    message = failure_text(alone)
    assert "2024-01-02|BTC-USD" in message and "blocked by quality checks" in message and "OHLC sanity" in message
    assert dg.AssetKey(LOAD) not in {e.asset_key for e in alone.get_asset_materialization_events()}


@pytest.mark.parametrize("selection", [["candles_1h"], [LOAD]])
def test_a_stale_clean_summary_does_not_pass_re_ingested_bad_rows(run, lake, platform_env, selection):
    run(INGEST, KEY)
    assert lake.read_json(REF, "_quality.json")["blocking_failures"] == []
    land_bad_rows(lake)  # the summary beside it still says clean

    result = run(selection, KEY, raise_on_error=False)
    assert not result.success
    message = failure_text(result)
    assert "2024-01-02|BTC-USD" in message and "re-ingested since" in message
    assert dg.AssetKey(selection[0]) not in {e.asset_key for e in result.get_asset_materialization_events()}

    # Checked again, the same rows are blocked by name; checked on good rows, they pass.
    run(["coinbase_candles_1m_quality"], KEY, raise_on_error=False)
    assert "blocked by quality checks" in failure_text(run(selection, KEY, raise_on_error=False))
    run(INGEST, KEY)
    assert run(selection, KEY).success
