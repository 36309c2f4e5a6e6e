"""Warehouse: idempotent loads into DuckDB tables that dbt models build on (no Dagster here)."""

from btc_platform.warehouse.duckdb_store import read_table, replace_partition, table_row_count

__all__ = ["read_table", "replace_partition", "table_row_count"]
