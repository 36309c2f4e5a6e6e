"""Dagster resources, configured from environment variables (DESIGN.md, Configuration).

A variable that is set is passed as `dg.EnvVar`, so the UI shows where the value came from without
showing the value; an unset one falls back to the embedded default (local lake, DuckDB file).
"""


import os
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import ClassVar

import dagster as dg
import pandas as pd

from btc_platform.config import BASE_URL_ENV, DEFAULT_BASE_URLS, KEY_ENV, Settings, env_int
from btc_platform.lake import Lake
from btc_platform.sources import mixing_allowed, source_from_env
from btc_platform.vendor_status import VendorStatusStore
from btc_platform.vendors import alphavantage, coinapi, coinbase, cryptoquant, feargreed, fred
from btc_platform.vendors.errors import NoCredentialsError
from btc_platform.warehouse import bigquery_store, duckdb_store


def env_or_default(name: str, default: str):
    return dg.EnvVar(name) if os.environ.get(name) else default


class LakeResource(dg.ConfigurableResource):
    """The data lake root: a local folder or gs://bucket/prefix. It holds one vendor source's data
    unless `allow_mixed_sources` (BTC_PLATFORM_ALLOW_MIXED_SOURCES=1) says otherwise (btc_platform.sources)."""

    url: str
    allow_mixed_sources: bool = False

    def lake(self) -> Lake:
        return Lake(self.url)

    def vendor_status(self) -> VendorStatusStore:
        return VendorStatusStore(self.lake())


class VendorResource(dg.ConfigurableResource):
    """A vendor's API at `base_url`; `source` says what answers there (`sandbox(seed=7)`, `replay:...`,
    `live`), shown here, in run tags and in every ingest partition's metadata. None: from the
    environment (BTC_PLATFORM_SOURCE, else derived from the base URLs)."""

    base_url: str
    source: str | None = None

    def origin(self) -> str:
        return self.source or source_from_env()


class CoinbaseResource(VendorResource):
    """Coinbase Exchange public market data (no key needed for candles)."""

    @contextmanager
    def http(self):
        with coinbase.make_http(self.base_url) as http:
            yield http


class KeyedVendorResource(VendorResource):
    """A vendor that needs a key. Unset key: the vendor is skipped with status `no_credentials`."""

    api_key: str | None = None

    vendor: ClassVar[str]
    client: ClassVar[ModuleType]  # the vendor's module under btc_platform/vendors (its make_http)

    def require_key(self) -> str:
        if not self.api_key:
            raise NoCredentialsError(f"{KEY_ENV[self.vendor]} is not set", vendor=self.vendor, endpoint="*")
        return self.api_key

    def client_options(self) -> dict:
        return {}

    @contextmanager
    def http(self):
        with self.client.make_http(self.base_url, self.require_key(), **self.client_options()) as http:
            yield http


class CoinAPIResource(KeyedVendorResource):
    vendor, client = "coinapi", coinapi


class CryptoQuantResource(KeyedVendorResource):
    vendor, client = "cryptoquant", cryptoquant


class FredResource(KeyedVendorResource):
    vendor, client = "fred", fred


class AlphaVantageResource(KeyedVendorResource):
    vendor, client = "alphavantage", alphavantage
    requests_per_day: int = 25  # the free plan; the asset plans its requests within it
    requests_per_minute: int = 5  # the free plan's pace

    def client_options(self) -> dict:
        return {"rate_per_s": self.requests_per_minute / 60.0}


class FearGreedResource(VendorResource):
    """alternative.me's Crypto Fear & Greed index: free, no key."""

    @contextmanager
    def http(self):
        with feargreed.make_http(self.base_url) as http:
            yield http


class WarehouseResource(dg.ConfigurableResource):
    """Where the lake's tables are loaded and dbt builds: DuckDB (default) or BigQuery."""

    def replace_partition(self, table: str, df: pd.DataFrame, partition: dict, *, description: str | None = None,
                          column_descriptions: dict[str, str] | None = None) -> int:
        """Replace exactly `partition` of `table` with `df`; the descriptions document the table where
        the warehouse keeps them."""
        raise NotImplementedError

    def read(self, sql_or_table: str) -> pd.DataFrame:
        raise NotImplementedError

    def dbt_env(self) -> dict[str, str]:
        """Environment for the dbt process: the profiles.yml target and its connection settings."""
        raise NotImplementedError


class DuckDBWarehouseResource(WarehouseResource):
    """The embedded warehouse: one DuckDB file, one writer at a time."""

    path: str

    @property
    def abspath(self) -> str:
        return str(Path(self.path).resolve())

    def replace_partition(self, table: str, df: pd.DataFrame, partition: dict, *, description: str | None = None,
                          column_descriptions: dict[str, str] | None = None) -> int:
        # Descriptions live in the asset definitions and dbt docs; the DuckDB file does not keep them.
        Path(self.abspath).parent.mkdir(parents=True, exist_ok=True)
        return duckdb_store.replace_partition(self.abspath, table, df, partition=partition)

    def read(self, sql_or_table: str) -> pd.DataFrame:
        return duckdb_store.read_table(self.abspath, sql_or_table)

    def dbt_env(self) -> dict[str, str]:
        return {"BTC_PLATFORM_DBT_TARGET": "duckdb", "BTC_PLATFORM_DUCKDB_PATH": self.abspath}


@lru_cache(maxsize=8)
def _bigquery_client(project: str, location: str, api_endpoint: str | None):
    return bigquery_store.make_client(project, location, api_endpoint)


class BigQueryWarehouseResource(WarehouseResource):
    """BigQuery: one dataset per zone; `api_endpoint` points at an emulator (anonymous credentials)."""

    project: str
    location: str = "US"
    dataset_raw: str = "raw"
    dataset_processed: str = "processed"
    dataset_staging: str = "staging"
    dataset_marts: str = "marts"
    dataset_monitoring: str = "monitoring"
    api_endpoint: str | None = None

    def datasets(self) -> dict[str, str]:
        return {zone: getattr(self, f"dataset_{zone}") for zone in bigquery_store.ZONES}

    def store(self) -> bigquery_store.BigQueryStore:
        # The emulator has no partition decorators: whole days go through the MERGE there.
        return bigquery_store.BigQueryStore(_bigquery_client(self.project, self.location, self.api_endpoint),
                                            self.datasets(), partition_decorators=not self.api_endpoint)

    def replace_partition(self, table: str, df: pd.DataFrame, partition: dict, *, description: str | None = None,
                          column_descriptions: dict[str, str] | None = None) -> int:
        return self.store().replace_partition(table, df, partition=partition, description=description,
                                              column_descriptions=column_descriptions)

    def read(self, sql_or_table: str) -> pd.DataFrame:
        return self.store().read(sql_or_table)

    def dbt_env(self) -> dict[str, str]:
        # profiles.yml's `bigquery` output; macros/warehouse_schemas.sql maps dbt's schemas to these datasets.
        env = {"BTC_PLATFORM_DBT_TARGET": "bigquery", "BTC_PLATFORM_BQ_PROJECT": self.project,
               "BTC_PLATFORM_BQ_LOCATION": self.location, "BTC_PLATFORM_BQ_DBT_METHOD": "oauth",
               "BTC_PLATFORM_BQ_API_ENDPOINT": self.api_endpoint or ""}
        env |= {f"BTC_PLATFORM_BQ_DATASET_{zone.upper()}": name for zone, name in self.datasets().items()}
        if self.api_endpoint:  # the emulator takes any token; production uses default credentials (oauth)
            env |= {"BTC_PLATFORM_BQ_DBT_METHOD": "oauth-secrets", "BTC_PLATFORM_BQ_TOKEN": "fake-token"}
        return env


class ArtifactsResource(dg.ConfigurableResource):
    """Where datasets and trained models are written (local folders by default)."""

    datasets_dir: str
    models_dir: str


def vendor_base_url(vendor: str):
    return env_or_default(BASE_URL_ENV[vendor], DEFAULT_BASE_URLS[vendor])


def vendor_key(vendor: str):
    # EnvVar when set (the UI shows the variable, never the value); None skips the vendor.
    return dg.EnvVar(KEY_ENV[vendor]) if os.environ.get(KEY_ENV[vendor]) else None


WAREHOUSES = ("duckdb", "bigquery")


def warehouse_kind(settings: Settings | None = None) -> str:
    """`BTC_PLATFORM_WAREHOUSE`: duckdb (default) or bigquery."""
    kind = os.environ.get("BTC_PLATFORM_WAREHOUSE") or (settings or Settings()).warehouse
    if kind not in WAREHOUSES:
        raise ValueError(f"BTC_PLATFORM_WAREHOUSE={kind!r}: expected one of {WAREHOUSES}")
    return kind


def warehouse_resource(settings: Settings) -> WarehouseResource:
    if warehouse_kind(settings) == "duckdb":
        return DuckDBWarehouseResource(path=env_or_default("BTC_PLATFORM_DUCKDB_PATH", settings.duckdb_path))
    if not os.environ.get("BTC_PLATFORM_BQ_PROJECT"):
        raise ValueError("BTC_PLATFORM_WAREHOUSE=bigquery needs BTC_PLATFORM_BQ_PROJECT")
    # Dataset names: BTC_PLATFORM_BQ_DATASET_<ZONE> each, else BTC_PLATFORM_BQ_DATASET_PREFIX + zone.
    prefix = os.environ.get("BTC_PLATFORM_BQ_DATASET_PREFIX", "")
    datasets = {f"dataset_{zone}": env_or_default(f"BTC_PLATFORM_BQ_DATASET_{zone.upper()}", prefix + zone)
                for zone in bigquery_store.ZONES}
    return BigQueryWarehouseResource(
        project=dg.EnvVar("BTC_PLATFORM_BQ_PROJECT"),
        location=env_or_default("BTC_PLATFORM_BQ_LOCATION", "US"),
        api_endpoint=env_or_default("BTC_PLATFORM_BQ_API_ENDPOINT", None),
        **datasets,
    )


def build_resources(settings: Settings | None = None) -> dict:
    settings = settings or Settings()
    from btc_platform.defs.training.launcher import training_launcher_resource
    from btc_platform.defs.warehouse.dbt import dbt_resource  # dbt needs its project prepared first

    source = source_from_env()  # a plain value, not an EnvVar: the UI shows which source this is
    return {
        "coinapi_api": CoinAPIResource(base_url=vendor_base_url("coinapi"), api_key=vendor_key("coinapi"),
                                       source=source),
        "cryptoquant_api": CryptoQuantResource(
            base_url=vendor_base_url("cryptoquant"), api_key=vendor_key("cryptoquant"), source=source
        ),
        "fred_api": FredResource(base_url=vendor_base_url("fred"), api_key=vendor_key("fred"), source=source),
        "alphavantage_api": AlphaVantageResource(
            base_url=vendor_base_url("alphavantage"),
            api_key=vendor_key("alphavantage"),
            requests_per_day=env_int("ALPHAVANTAGE_REQUESTS_PER_DAY"),
            requests_per_minute=env_int("ALPHAVANTAGE_REQUESTS_PER_MINUTE"),
            source=source,
        ),
        "feargreed_api": FearGreedResource(base_url=vendor_base_url("feargreed"), source=source),
        "lake": LakeResource(url=env_or_default("BTC_PLATFORM_LAKE_URL", settings.lake_url),
                             allow_mixed_sources=mixing_allowed()),
        "coinbase_api": CoinbaseResource(base_url=vendor_base_url("coinbase"), source=source),
        "warehouse": warehouse_resource(settings),
        "artifacts": ArtifactsResource(
            datasets_dir=env_or_default("BTC_PLATFORM_DATASETS_DIR", settings.datasets_dir),
            models_dir=env_or_default("BTC_PLATFORM_MODELS_DIR", settings.models_dir),
        ),
        "dbt": dbt_resource(),
        "training_launcher": training_launcher_resource(),
    }
