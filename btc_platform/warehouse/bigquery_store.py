"""BigQuery store: the warehouse tables in BigQuery, one partition replaced per call (no Dagster here).

`zone.name` (raw, processed, staging, marts) maps to `<project>.<the zone's dataset>.<name>`. Tables are
created with an explicit schema (from the frame's Arrow types), partitioned by day on `partition_date`,
clustered by `symbol`, with the table and column descriptions the caller passes.

How a partition is replaced:
- (day, symbol), the load assets' partitions: a day partition of the table holds every symbol, so a
  WRITE_TRUNCATE load into `table$YYYYMMDD` would wipe the day's other symbols. The frame is loaded with
  a Parquet load job into a staging table, then ONE MERGE deletes the target's rows of that day and
  symbol and inserts the staged rows: a single atomic statement, so readers see the old rows or the new,
  never neither, and a failure leaves the old ones. `partition_date` in the delete condition prunes the
  scan to one day and the clustering on `symbol` to that symbol's blocks.
- a whole day (partition = {partition_date} only): one WRITE_TRUNCATE load job into the partition
  decorator `table$YYYYMMDD`, atomic and without DML. The emulator lacks decorators, so a store made
  with `partition_decorators=False` sends whole days through the MERGE too (same result, more cost).
"""

from __future__ import annotations

import io
import re
import uuid
import warnings
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from google.api_core.client_options import ClientOptions
from google.api_core.exceptions import NotFound, PreconditionFailed
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from btc_platform.warehouse.partition_frame import ident, split_table, with_partition_columns

ZONES = ("raw", "processed", "staging", "marts", "monitoring")
PARTITION_FIELD = "partition_date"
CLUSTER_FIELD = "symbol"
STAGING_TTL = timedelta(hours=6)  # a crashed load's staging table expires on its own
_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")


def make_client(project: str, location: str | None = None, api_endpoint: str | None = None) -> bigquery.Client:
    """Application default credentials; with `api_endpoint` (the emulator) anonymous ones."""
    if api_endpoint:
        return bigquery.Client(project=project, location=location, credentials=AnonymousCredentials(),
                               client_options=ClientOptions(api_endpoint=api_endpoint))
    return bigquery.Client(project=project, location=location)


def bigquery_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP" if arrow_type.tz else "DATETIME"
    for check, name in ((pa.types.is_date, "DATE"), (pa.types.is_floating, "FLOAT64"),
                        (pa.types.is_integer, "INT64"), (pa.types.is_boolean, "BOOL"), (pa.types.is_string, "STRING")):
        if check(arrow_type):
            return name
    raise TypeError(f"no BigQuery column type for Arrow type {arrow_type}")


def table_schema(data: pa.Table, column_descriptions: Mapping[str, str] | None = None) -> list[bigquery.SchemaField]:
    described = column_descriptions or {}
    return [bigquery.SchemaField(f.name, bigquery_type(f.type), mode="NULLABLE", description=described.get(f.name))
            for f in data.schema]


def new_table(table_id: str, schema: list[bigquery.SchemaField], description: str | None) -> bigquery.Table:
    table = bigquery.Table(table_id, schema=schema)
    table.description = description
    names = {f.name for f in schema}
    if PARTITION_FIELD in names:
        table.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY,
                                                            field=PARTITION_FIELD)
    if CLUSTER_FIELD in names:
        table.clustering_fields = [CLUSTER_FIELD]
    return table


def staging_table(table_id: str, schema: list[bigquery.SchemaField]) -> bigquery.Table:
    staging = bigquery.Table(f"{table_id}__load_{uuid.uuid4().hex[:12]}", schema=schema)
    staging.expires = datetime.now(timezone.utc) + STAGING_TTL
    return staging


def parquet_buffer(data: pa.Table) -> io.BytesIO:
    buffer = io.BytesIO()
    pq.write_table(data, buffer)
    buffer.seek(0)
    return buffer


def decorator_load(table_id: str, day: date) -> tuple[str, bigquery.LoadJobConfig]:
    """Destination and config of the load job that replaces one whole day partition."""
    config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.PARQUET,
                                    write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE)
    return f"{table_id}${day:%Y%m%d}", config


def _parameter(name: str, value: object) -> bigquery.ScalarQueryParameter:
    kinds = ((bool, "BOOL"), (int, "INT64"), (float, "FLOAT64"), (datetime, "TIMESTAMP"), (date, "DATE"), (str, "STRING"))
    kind = next((k for t, k in kinds if isinstance(value, t)), None)
    if kind is None:
        raise TypeError(f"partition value {value!r} for {name!r} has no BigQuery parameter type")
    return bigquery.ScalarQueryParameter(name, kind, value)


def merge_partition(table_id: str, staging_id: str, columns: list[str], partition: Mapping[str, object]):
    """The MERGE that swaps the target's rows of `partition` for the staged rows, and its parameters."""
    condition = " AND ".join(f"target.`{ident(k, 'partition column')}` = @{k}" for k in partition)
    names = ", ".join(f"`{ident(c, 'column')}`" for c in columns)
    sql = (f"MERGE `{table_id}` AS target\nUSING `{staging_id}` AS incoming\nON FALSE\n"
           f"WHEN NOT MATCHED BY SOURCE AND {condition} THEN DELETE\n"
           f"WHEN NOT MATCHED BY TARGET THEN INSERT ({names}) VALUES ({names})")
    return sql, [_parameter(k, v) for k, v in partition.items()]


class BigQueryStore:
    def __init__(self, client: bigquery.Client, datasets: Mapping[str, str], *, partition_decorators: bool = True):
        unknown = set(datasets) - set(ZONES)
        if unknown:
            raise ValueError(f"unknown zones {sorted(unknown)}: expected some of {ZONES}")
        self.client = client
        self.datasets = {zone: ident(datasets.get(zone, zone), "dataset") for zone in ZONES}
        self.partition_decorators = partition_decorators
        self._known_datasets: set[str] = set()

    def table_id(self, table: str) -> str:
        zone, name = split_table(table)
        if zone not in self.datasets:
            raise ValueError(f"table {table!r}: zone {zone!r} is not one of {ZONES}")
        return f"{self.client.project}.{self.datasets[zone]}.{name}"

    def replace_partition(self, table: str, df: pd.DataFrame, *, partition: Mapping[str, object],
                          description: str | None = None, column_descriptions: Mapping[str, str] | None = None) -> int:
        """Replace the rows of `table` matching `partition` with `df`; returns the rows loaded."""
        data = with_partition_columns(df, partition)
        table_id = self.table_id(table)
        fields = table_schema(data, column_descriptions)
        self._ensure_table(table_id, fields, description)
        if self.partition_decorators and set(partition) == {PARTITION_FIELD}:
            destination, config = decorator_load(table_id, partition[PARTITION_FIELD])
            self.client.load_table_from_file(parquet_buffer(data), destination, job_config=config).result()
            return data.num_rows
        staging = self.client.create_table(staging_table(table_id, fields))
        try:
            if data.num_rows:
                config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.PARQUET)
                self.client.load_table_from_file(parquet_buffer(data), staging, job_config=config).result()
            sql, parameters = merge_partition(table_id, str(staging.reference), data.column_names, partition)
            self.client.query(sql, job_config=bigquery.QueryJobConfig(query_parameters=parameters)).result()
        finally:
            self.client.delete_table(staging, not_found_ok=True)
        return data.num_rows

    def _ensure_dataset(self, table_id: str) -> None:
        dataset_id = table_id.rsplit(".", 1)[0]
        if dataset_id in self._known_datasets:
            return
        try:
            self.client.get_dataset(dataset_id)
        except NotFound:  # provisioned datasets are only read: creating needs more rights than loading
            self.client.create_dataset(bigquery.Dataset(dataset_id), exists_ok=True)
        self._known_datasets.add(dataset_id)

    def _ensure_table(self, table_id: str, fields: list[bigquery.SchemaField], description: str | None) -> None:
        """Create the table, or widen it by the frame's new columns and refresh its descriptions."""
        self._ensure_dataset(table_id)
        try:
            table = self.client.get_table(table_id)
        except NotFound:
            self.client.create_table(new_table(table_id, fields, description), exists_ok=True)
            table = self.client.get_table(table_id)
        existing = {f.name for f in table.schema}
        added = [f for f in fields if f.name not in existing]  # a wider partition: older rows read NULL
        if added:
            # DDL, not a schema patch: either widens a BigQuery table, but on the emulator only DDL
            # widens the stored rows (a patch changes its catalog alone). IF NOT EXISTS: parallel loads.
            self.client.query(add_columns_script(table_id, added)).result()
        for _ in range(5):  # a parallel load may change the table between our read and our update
            table = self.client.get_table(table_id)
            changed = _describe(table, fields, description)
            if not changed:
                return
            try:
                self.client.update_table(table, changed)  # sends the etag: fails if someone else changed it
                return
            except PreconditionFailed:
                continue
        raise RuntimeError(f"{table_id}: schema kept changing under concurrent loads")

    def read(self, sql_or_table: str) -> pd.DataFrame:
        """A whole table (`zone.name`) or a query's result."""
        text = sql_or_table.strip()
        sql = f"SELECT * FROM `{self.table_id(text)}`" if _TABLE_NAME.match(text) else text
        with warnings.catch_warnings():  # "use pandas-gbq": not a dependency here
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            return self.client.query(sql).to_dataframe(create_bqstorage_client=False)

    def table_row_count(self, table: str) -> int:
        rows = self.client.query(f"SELECT COUNT(*) AS n FROM `{self.table_id(table)}`").result()
        return int(next(iter(rows))["n"])


def add_columns_script(table_id: str, fields: list[bigquery.SchemaField]) -> str:
    return "\n".join(f"ALTER TABLE `{table_id}` ADD COLUMN IF NOT EXISTS `{ident(f.name, 'column')}` {f.field_type};"
                     for f in fields)


def _describe(table: bigquery.Table, fields: list[bigquery.SchemaField], description: str | None) -> list[str]:
    """Set the wanted descriptions on `table`; returns the properties that changed.

    Fields missing from the table's metadata are appended too: on BigQuery the DDL already added them,
    the emulator's catalog needs them added.
    """
    changed = []
    if description is not None and table.description != description:
        table.description = description
        changed.append("description")
    wanted = {f.name: f for f in fields}
    schema, schema_changed = [], False
    for field in table.schema:
        new_description = wanted[field.name].description if field.name in wanted else None
        if new_description and new_description != field.description:
            field = bigquery.SchemaField.from_api_repr({**field.to_api_repr(), "description": new_description})
            schema_changed = True
        schema.append(field)
    existing = {f.name for f in table.schema}
    missing = [f for f in fields if f.name not in existing]
    if missing or schema_changed:
        table.schema = schema + missing
        changed.append("schema")
    return changed
