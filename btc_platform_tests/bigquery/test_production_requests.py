"""What production sends where the emulator cannot follow: the requests themselves are checked.

- whole-day partitions load into the partition decorator `table$YYYYMMDD` (the emulator has none);
- staging tables expire on their own if a load dies (the emulator ignores expiration);
- dbt connects with default credentials (oauth) and the real endpoint.
"""

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from google.api_core.exceptions import BadRequest
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from btc_platform.warehouse import bigquery_store
from btc_platform.warehouse.bigquery_store import BigQueryStore, decorator_load, merge_partition, staging_table
from btc_platform_tests.bigquery.conftest import hourly

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
TABLE_ID = "prod-project.btc_processed.candles_1h"


def test_whole_day_is_one_truncating_load_job_into_the_partition_decorator():
    destination, config = decorator_load(TABLE_ID, date(2024, 1, 2))
    client = bigquery.Client(project="prod-project", credentials=AnonymousCredentials())  # sends nothing
    job = bigquery.LoadJob("job-1", None, bigquery.TableReference.from_string(destination), client, config)
    load = job.to_api_repr()["configuration"]["load"]
    assert load["destinationTable"] == {"projectId": "prod-project", "datasetId": "btc_processed",
                                        "tableId": "candles_1h$20240102"}
    assert load["writeDisposition"] == "WRITE_TRUNCATE" and load["sourceFormat"] == "PARQUET"


class RecordingClient:
    """The emulator's client, recording the load jobs it is asked to run."""

    def __init__(self, client):
        self._client, self.loads = client, []

    def __getattr__(self, name):
        return getattr(self._client, name)

    def load_table_from_file(self, file, destination, job_config=None, **kwargs):
        self.loads.append((str(destination), job_config))
        return self._client.load_table_from_file(file, destination, job_config=job_config, **kwargs)


def test_store_in_production_mode_sends_whole_days_to_the_decorator(bq_store):
    recording = RecordingClient(bq_store.client)
    production = BigQueryStore(recording, bq_store.datasets, partition_decorators=True)
    table_id = production.table_id("raw.fear_greed_index")
    frame = hourly(date(2024, 1, 2), "BTC-USD", 1.0).drop(columns="symbol")

    with pytest.raises(BadRequest, match=r"\$20240102"):  # the emulator rejects decorators
        production.replace_partition("raw.fear_greed_index", frame, partition={"partition_date": date(2024, 1, 2)})
    [(destination, config)] = recording.loads
    assert destination == f"{table_id}$20240102" and config.write_disposition == "WRITE_TRUNCATE"
    # The table was created first, with its partitioning, so the decorator names a real day partition.
    assert production.client.get_table(table_id).time_partitioning.field == "partition_date"


def test_day_and_symbol_never_use_the_decorator_that_would_wipe_the_other_symbols(bq_store):
    recording = RecordingClient(bq_store.client)
    production = BigQueryStore(recording, bq_store.datasets, partition_decorators=True)
    day = date(2024, 1, 2)
    production.replace_partition("raw.candles", hourly(day, "BTC-USD", 1.0), partition={"partition_date": day,
                                                                                           "symbol": "BTC-USD"})
    [(destination, config)] = recording.loads
    assert "$" not in destination and "__load_" in destination  # a staging table, then the MERGE


def test_merge_deletes_only_the_partition_it_names():
    sql, parameters = merge_partition(TABLE_ID, f"{TABLE_ID}__load_x", ["ts", "symbol", "close"],
                                      {"partition_date": date(2024, 1, 2), "symbol": "BTC-USD"})
    assert ("WHEN NOT MATCHED BY SOURCE AND target.`partition_date` = @partition_date "
            "AND target.`symbol` = @symbol THEN DELETE") in sql
    assert "INSERT (`ts`, `symbol`, `close`) VALUES (`ts`, `symbol`, `close`)" in sql  # not INSERT ROW
    assert [(p.name, p.type_, p.value) for p in parameters] == [
        ("partition_date", "DATE", date(2024, 1, 2)), ("symbol", "STRING", "BTC-USD")]


def test_staging_tables_expire_if_a_load_dies():
    staging = staging_table(TABLE_ID, [bigquery.SchemaField("ts", "TIMESTAMP")])
    expires_ms = int(staging.to_api_repr()["expirationTime"])
    expires = datetime.fromtimestamp(expires_ms / 1000, timezone.utc)
    assert timedelta(0) < expires - datetime.now(timezone.utc) <= bigquery_store.STAGING_TTL
    assert staging.table_id.startswith("candles_1h__load_")


def test_widening_is_ddl_one_statement_per_column():
    script = bigquery_store.add_columns_script(TABLE_ID, [bigquery.SchemaField("rsi_14", "FLOAT64"),
                                                          bigquery.SchemaField("note", "STRING")])
    assert script.splitlines() == [
        f"ALTER TABLE `{TABLE_ID}` ADD COLUMN IF NOT EXISTS `rsi_14` FLOAT64;",
        f"ALTER TABLE `{TABLE_ID}` ADD COLUMN IF NOT EXISTS `note` STRING;"]


def dbt_credentials(env: dict):
    """The `bigquery` output of dbt_project/profiles.yml as dbt renders it under `env`."""
    from argparse import Namespace

    from dbt.config.profile import Profile, read_profile
    from dbt.config.renderer import ProfileRenderer
    from dbt.flags import set_from_args
    from dbt_common.context import set_invocation_context

    set_from_args(Namespace(), {})
    set_invocation_context(env)
    profile = Profile.from_raw_profiles(read_profile(str(DBT_PROJECT_DIR)), "btc_platform", ProfileRenderer({}),
                                        target_override="bigquery")
    return profile.credentials


def test_dbt_profile_in_production_uses_default_credentials():
    from btc_platform.defs.resources import BigQueryWarehouseResource

    env = BigQueryWarehouseResource(project="prod-project", location="EU", dataset_marts="btc_marts").dbt_env()
    credentials = dbt_credentials(env)
    assert credentials.method == "oauth" and not credentials.api_endpoint
    assert (credentials.database, credentials.schema, credentials.location) == ("prod-project", "btc_marts", "EU")


def test_dbt_profile_on_the_emulator_sends_a_token_to_its_endpoint():
    from btc_platform.defs.resources import BigQueryWarehouseResource

    env = BigQueryWarehouseResource(project="test-project", api_endpoint="http://127.0.0.1:9050").dbt_env()
    credentials = dbt_credentials(env)
    assert credentials.method == "oauth-secrets" and credentials.token == "fake-token"
    assert credentials.api_endpoint == "http://127.0.0.1:9050"
