"""BTC_PLATFORM_WAREHOUSE picks the warehouse resource; BigQuery settings arrive as EnvVars."""

import dagster as dg
import pytest

from btc_platform.config import Settings
from btc_platform.defs.resources import BigQueryWarehouseResource, DuckDBWarehouseResource, warehouse_resource


def test_duckdb_is_the_default(monkeypatch, tmp_path):
    monkeypatch.delenv("BTC_PLATFORM_WAREHOUSE", raising=False)
    monkeypatch.setenv("BTC_PLATFORM_DUCKDB_PATH", str(tmp_path / "w.duckdb"))
    assert isinstance(warehouse_resource(Settings()), DuckDBWarehouseResource)


def test_bigquery_settings_come_from_the_environment(bigquery_env):
    resource = warehouse_resource(Settings())
    assert isinstance(resource, BigQueryWarehouseResource)
    assert isinstance(resource.project, dg.EnvVar) and isinstance(resource.dataset_raw, dg.EnvVar)
    resolved = resource.process_config_and_initialize()
    prefix = bigquery_env["BTC_PLATFORM_BQ_DATASET_PREFIX"]
    assert resolved.project == "test-project" and resolved.api_endpoint == bigquery_env["BTC_PLATFORM_BQ_API_ENDPOINT"]
    assert resolved.datasets() == {zone: prefix + zone for zone in ("raw", "processed", "staging", "marts", "monitoring")}
    env = resolved.dbt_env()
    assert env["BTC_PLATFORM_DBT_TARGET"] == "bigquery" and env["BTC_PLATFORM_BQ_DATASET_MARTS"] == prefix + "marts"


def test_bigquery_without_a_project_or_an_unknown_warehouse_is_refused(monkeypatch):
    monkeypatch.setenv("BTC_PLATFORM_WAREHOUSE", "bigquery")
    monkeypatch.delenv("BTC_PLATFORM_BQ_PROJECT", raising=False)
    with pytest.raises(ValueError, match="BTC_PLATFORM_BQ_PROJECT"):
        warehouse_resource(Settings())
    monkeypatch.setenv("BTC_PLATFORM_WAREHOUSE", "snowflake")
    with pytest.raises(ValueError, match="snowflake"):
        warehouse_resource(Settings())
