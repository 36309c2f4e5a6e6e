"""The warehouse group through Dagster with BTC_PLATFORM_WAREHOUSE=bigquery (bqemulator), and parity
with DuckDB: one sandbox lake loaded into both, dbt built on both, the marts compared row for row."""

from datetime import date, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from pandas.api.types import is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype

from btc_platform.demo import materialize_selection
from btc_platform.defs.partitions import range_tags
from btc_platform.sandbox.registry import vendor_env
from btc_platform_tests.fixtures.bigquery_emulator import DBT_ENV_NAMES, forget_after_test, fresh_dataset_env

SYMBOL = "BTC-USD"
START = date(2024, 1, 1)
# sma_200 warms up in day 9 (index 8); the 5-day targets of day 10 need candles through day 15.
LOADED = (START + timedelta(days=8), START + timedelta(days=9))
CANDLES_TO = LOADED[1] + timedelta(days=5)
PROCESSED = ["technical_features_1h", "technical_features_4h", "technical_features_1d", "multi_timeframe_features_1h",
             "forward_targets_1h", "context_features_1h"]
# Every table the marts read (the 90-day targets are legitimately absent: the marts build without them).
LOADS = ["warehouse_coinbase_candles_1m", "warehouse_candles_1h", "warehouse_technical_features_1h",
         "warehouse_forward_targets_1h", "warehouse_context_features_1h", "warehouse_multi_timeframe_features_1h",
         "warehouse_candles_1d", "warehouse_technical_features_1d", "warehouse_candle_quality"]
DESCRIBED = LOADS[:5]  # the lake_table_load assets whose column schemas this test checks
MART_KEYS = ["symbol", "ts"]


@pytest.fixture(scope="module")
def built(sandbox, bigquery_emulator, tmp_path_factory):
    """A sandbox lake (one product, 15 days), loaded and built with dbt into DuckDB and into BigQuery."""
    from btc_platform.definitions import defs
    from btc_platform.defs.resources import build_resources

    root = tmp_path_factory.mktemp("warehouse_parity")
    base = {"BTC_PLATFORM_LAKE_URL": str(root / "lake"), "BTC_PLATFORM_DUCKDB_PATH": str(root / "warehouse.duckdb"),
            "BTC_PLATFORM_DATASETS_DIR": str(root / "datasets"), "BTC_PLATFORM_MODELS_DIR": str(root / "models"),
            **vendor_env(sandbox)}
    bigquery = fresh_dataset_env(bigquery_emulator)
    loaded_range = range_tags(*LOADED, SYMBOL)
    results = {}
    with pytest.MonkeyPatch.context() as env, dg.instance_for_test() as instance:
        forget_after_test(env, [*DBT_ENV_NAMES, "BTC_PLATFORM_DUCKDB_PATH", *bigquery])
        for name, value in base.items():
            env.setenv(name, value)

        def run(selection, tags):
            return materialize_selection(defs, instance, build_resources(), selection, tags=tags)

        run(["coinbase_candles_1m", "coinbase_candles_1m_quality", "candles_1h", "candles_4h", "candles_1d"],
            range_tags(START, CANDLES_TO, SYMBOL))
        run(PROCESSED, loaded_range)
        for warehouse, extra in (("duckdb", {}), ("bigquery", bigquery)):
            for name, value in extra.items():
                env.setenv(name, value)
            resources = build_resources()
            results[warehouse] = {
                "resource": resources["warehouse"].process_config_and_initialize(),
                "loads": run(LOADS, loaded_range),
                "dbt": run(dbt_keys(defs, partitioned=True), range_tags(*LOADED)),
                # The unpartitioned monitoring views: run on BigQuery only (DuckDB's are tested elsewhere).
                "dbt_views": run(views, None) if warehouse == "bigquery" and (views := dbt_keys(defs, partitioned=False))
                else None,
            }
    return results


def dbt_keys(defs, *, partitioned: bool) -> list[dg.AssetKey]:
    """The dbt models' keys: the day-partitioned marts, or the unpartitioned views."""
    return [key for assets_def in defs.assets if isinstance(assets_def, dg.AssetsDefinition)
            and (assets_def.partitions_def is not None) == partitioned
            for key, spec in assets_def.specs_by_key.items() if "dbt" in spec.kinds]


def marts(warehouse) -> set[str]:
    """The tables dbt built in the marts zone."""
    if hasattr(warehouse, "store"):
        store = warehouse.store()
        return {t.table_id for t in store.client.list_tables(store.datasets["marts"]) if t.table_type == "TABLE"}
    tables = warehouse.read("select table_name from information_schema.tables "
                            "where table_schema = 'marts' and table_type = 'BASE TABLE'")
    return set(tables["table_name"])


def test_loads_through_dagster_fill_partitioned_described_bigquery_tables(built):
    from btc_platform.definitions import defs

    result, warehouse = built["bigquery"]["loads"], built["bigquery"]["resource"]
    assert result.success
    store = warehouse.store()
    for asset in DESCRIBED:
        spec = defs.resolve_assets_def(asset).specs_by_key[dg.AssetKey(asset)]
        table = store.client.get_table(store.table_id(spec.metadata["table"]))
        assert table.time_partitioning.field == "partition_date" and table.clustering_fields == ["symbol"]
        assert table.description == spec.description
        declared = {c.name: c.description for c in spec.metadata["dagster/column_schema"].columns}
        described = {f.name: f.description for f in table.schema}
        assert described["ts"] == declared["ts"] and described["partition_date"] == declared["partition_date"]
        rows = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
        # Each partition reports its own rows.
        expected = sum(e.materialization.metadata["dagster/row_count"].value for e in rows)
        assert store.table_row_count(spec.metadata["table"]) == expected > 0
    features = {f.name: f for f in store.client.get_table(store.table_id("processed.technical_features_1h")).schema}
    assert features["rsi_14"].description.startswith("Relative strength index over 14 bars")
    assert features["roc_20"].field_type == "FLOAT64" and features["roc_20"].description.startswith("Alpha158 ROC")
    # The same tables in DuckDB hold the same number of rows.
    duck = built["duckdb"]["resource"]
    for asset in LOADS:
        table = defs.resolve_assets_def(asset).specs_by_key[dg.AssetKey(asset)].metadata["table"]
        assert len(duck.read(table)) == store.table_row_count(table)


def test_dbt_builds_the_marts_on_the_emulator(built):
    result, warehouse = built["bigquery"]["dbt"], built["bigquery"]["resource"]
    assert result.success and (built["bigquery"]["dbt_views"] is None or built["bigquery"]["dbt_views"].success)
    built_models = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert "training_table_1h" in built_models
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks)
    dataset = warehouse.store().datasets["marts"]
    assert "training_table_1h" in {t.table_id for t in warehouse.store().client.list_tables(dataset)}


def canonical(column: pd.Series, like: pd.Series):
    """Values comparable across the two warehouses, by the DuckDB column's kind."""
    values = column.astype(object).where(column.notna(), None)
    if is_bool_dtype(like):
        return values.map(lambda v: None if v is None else bool(v)).tolist()
    if is_numeric_dtype(like):
        return pd.to_numeric(values, errors="raise").astype(float).to_numpy()
    if is_datetime64_any_dtype(like) or str(column.dtype) == "dbdate":
        return pd.to_datetime(values, utc=True).astype("int64").where(values.notna(), -1).tolist()
    return values.map(lambda v: None if v is None else str(v)).tolist()


def test_marts_on_duckdb_and_bigquery_hold_the_same_rows(built):
    duck, bq = built["duckdb"]["resource"], built["bigquery"]["resource"]
    assert built["duckdb"]["dbt"].success and built["bigquery"]["dbt"].success
    names = marts(duck)
    assert "training_table_1h" in names and marts(bq) == names
    for name in sorted(names):
        left = duck.read(f"marts.{name}").sort_values(MART_KEYS, ignore_index=True)
        right = bq.read(f"marts.{name}").sort_values(MART_KEYS, ignore_index=True)
        assert len(right) == len(left), name
        assert name != "training_table_1h" or len(left) > 24, name
        assert sorted(right.columns) == sorted(left.columns), name
        for column in left.columns:
            a, b = canonical(left[column], left[column]), canonical(right[column], left[column])
            if isinstance(a, np.ndarray):
                assert np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True), f"{name}.{column}"
            else:
                assert a == b, f"{name}.{column}"
