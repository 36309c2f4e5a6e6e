"""The asset graph with BTC_PLATFORM_LAKE_URL=gs://...: every zone and document lands on the emulator
in the hive layout, nothing in the local lake folder, and re-runs replace their partitions."""

import re
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from btc_platform.defs.alphavantage.assets import alphavantage_ref
from btc_platform.defs.coinbase.assets import candles_ref
from btc_platform.defs.features.assets import processed_ref
from btc_platform.defs.partitions import multi_key, range_tags

DAY = date(2024, 1, 2)
DAYS = [DAY, DAY + timedelta(days=1)]
INGEST = ["coinbase_candles_1m", "coinbase_candles_1m_quality"]
HIVE = re.compile(r"^(raw|processed)/[a-z0-9_]+/symbol=BTC-USD/interval=(1m|1h)/yyyy=2024/mm=01/dd=0[23]/"
                  r"(part-000\.parquet|_quality\.json)$")


def materialized_paths(result) -> list[str]:
    return [str(e.materialization.metadata["path"].value) for e in result.get_asset_materialization_events()
            if "path" in e.materialization.metadata]


def test_ingest_to_processed_features_lands_on_gcs_in_the_hive_layout(run, gcs_env, gcs_lake, stored):
    result = run([*INGEST, "candles_1h", "technical_features_1h", "warehouse_candles_1h"],
                 tags=range_tags(DAYS[0], DAYS[-1], "BTC-USD"))
    assert result.success

    # Besides the partitions: the lake's recorded vendor source and Coinbase's status document.
    names = [n for n in stored() if n not in ("_platform/source.json", "_status/vendors/coinbase/candles.json")]
    assert {"_platform/source.json", "_status/vendors/coinbase/candles.json"} <= set(stored())
    expected = {f"{ref.relpath()}/{name}" for day in DAYS for ref, name in [
        (candles_ref(day, "BTC-USD"), "part-000.parquet"),
        (candles_ref(day, "BTC-USD"), "_quality.json"),
        (processed_ref("candles", day, "BTC-USD"), "part-000.parquet"),
        (processed_ref("technical_features", day, "BTC-USD"), "part-000.parquet"),
    ]}
    assert set(names) == expected and all(HIVE.match(n) for n in names)  # no staging object left either
    assert all(p.startswith(gcs_env["BTC_PLATFORM_LAKE_URL"] + "/") for p in materialized_paths(result))
    assert not Path(gcs_env["BTC_PLATFORM_LAKE_URL"].replace("gs://", "")).exists()
    assert not Path(Path(gcs_env["BTC_PLATFORM_DUCKDB_PATH"]).parent, "lake").exists()  # the local default

    hourly = gcs_lake.read(processed_ref("candles", DAYS[1], "BTC-USD"))
    features = gcs_lake.read(processed_ref("technical_features", DAYS[1], "BTC-USD"))
    assert len(hourly) == len(features) == 24 and features["rsi_14"].notna().any()
    assert gcs_lake.read_json(candles_ref(DAYS[1], "BTC-USD"), "_quality.json")["expected_bars"] == 1440


def test_a_rerun_replaces_the_partition_on_gcs_without_duplicates(run, gcs_lake, stored):
    key = multi_key(DAY, "BTC-USD")
    run(INGEST, key)
    first = gcs_lake.read(candles_ref(DAY, "BTC-USD")).drop(columns=["ingested_at"])
    run(INGEST, key)
    again = gcs_lake.read(candles_ref(DAY, "BTC-USD")).drop(columns=["ingested_at"])
    pd.testing.assert_frame_equal(again, first)
    assert not again.duplicated(["symbol", "ts"]).any() and len(again) > 1380
    partitions = [n for n in stored() if not n.startswith(("_platform/", "_status/"))]
    assert partitions == [f"{candles_ref(DAY, 'BTC-USD').relpath()}/{n}" for n in ("_quality.json", "part-000.parquet")]


def test_documents_reports_and_vendor_status_land_on_gcs(run, gcs_env, gcs_lake, stored):
    run(INGEST, multi_key(DAY, "BTC-USD"))
    run(["alphavantage_daily"], DAY.isoformat())
    report = run(["coverage_report"])

    png = report.get_asset_materialization_events()[0].materialization.metadata["png"].value
    assert png == f"{gcs_env['BTC_PLATFORM_LAKE_URL']}/_reports/coverage/coverage.png"
    names = set(stored())
    assert {"_reports/coverage/coverage.png", "_reports/coverage/coverage.svg",
            "_status/alphavantage_budget.json", "_status/alphavantage_loaded.json"} <= names
    assert any(n.startswith("_status/vendors/alphavantage/") for n in names)
    assert gcs_lake.get_document("_status/alphavantage_budget.json")["used_today"] > 0  # requests were paid for
    assert len(gcs_lake.read(alphavantage_ref(DAY))) > 0
    assert not any("_staging" in n for n in names)
