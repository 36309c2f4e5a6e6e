"""Dagster resources, configured from environment variables (DESIGN.md, Configuration).

A variable that is set is passed as `dg.EnvVar`, so the UI shows where the value came from without
showing the value; an unset one falls back to the embedded default (local lake, DuckDB file).
"""


import os
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pandas as pd

from btc_platform.config import BASE_URL_ENV, DEFAULT_BASE_URLS, Settings
from btc_platform.lake import Lake
from btc_platform.vendors import coinbase
from btc_platform.warehouse import duckdb_store


def env_or_default(name: str, default: str):
    return dg.EnvVar(name) if os.environ.get(name) else default


class LakeResource(dg.ConfigurableResource):
    """The data lake root: a local folder or gs://bucket/prefix."""

    url: str

    def lake(self) -> Lake:
        return Lake(self.url)


class CoinbaseResource(dg.ConfigurableResource):
    """Coinbase Exchange public market data (no key needed for candles)."""

    base_url: str

    @contextmanager
    def http(self):
        with coinbase.make_http(self.base_url) as http:
            yield http


class DuckDBWarehouseResource(dg.ConfigurableResource):
    """The embedded warehouse: one DuckDB file, one writer at a time."""

    path: str

    @property
    def abspath(self) -> str:
        return str(Path(self.path).resolve())

    def replace_partition(self, table: str, df: pd.DataFrame, partition: dict) -> int:
        Path(self.abspath).parent.mkdir(parents=True, exist_ok=True)
        return duckdb_store.replace_partition(self.abspath, table, df, partition=partition)

    def read(self, sql_or_table: str) -> pd.DataFrame:
        return duckdb_store.read_table(self.abspath, sql_or_table)


class ArtifactsResource(dg.ConfigurableResource):
    """Where datasets and trained models are written (local folders by default)."""

    datasets_dir: str
    models_dir: str


def build_resources(settings: Settings | None = None) -> dict:
    settings = settings or Settings()
    from btc_platform.defs.warehouse.dbt import dbt_resource  # dbt needs its project prepared first

    return {
        "lake": LakeResource(url=env_or_default("BTC_PLATFORM_LAKE_URL", settings.lake_url)),
        "coinbase_api": CoinbaseResource(
            base_url=env_or_default(BASE_URL_ENV["coinbase"], DEFAULT_BASE_URLS["coinbase"])
        ),
        "warehouse": DuckDBWarehouseResource(
            path=env_or_default("BTC_PLATFORM_DUCKDB_PATH", settings.duckdb_path)
        ),
        "artifacts": ArtifactsResource(
            datasets_dir=env_or_default("BTC_PLATFORM_DATASETS_DIR", settings.datasets_dir),
            models_dir=env_or_default("BTC_PLATFORM_MODELS_DIR", settings.models_dir),
        ),
        "dbt": dbt_resource(),
        "pipes_subprocess_client": dg.PipesSubprocessClient(),
    }
