"""DuckDB store: replace one partition of a table per call, atomically.

DuckDB allows a single writer process per file, so every call opens, works and closes its own
connection instead of holding one; a call that finds the file locked by another process retries briefly.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
from pandas.api.types import is_datetime64_any_dtype

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
_LOCK_WAIT_S = 30.0


def _ident(name: object, what: str) -> str:
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ValueError(f"invalid {what} name {name!r}: must match {_IDENT.pattern}")
    return name


def _table(table: str) -> tuple[str, str]:
    parts = table.split(".")
    if len(parts) != 2:
        raise ValueError(f"invalid table name {table!r}: expected 'schema.name'")
    return _ident(parts[0], "schema"), _ident(parts[1], "table")


def _connect(db_path: str | Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    path = Path(db_path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + _LOCK_WAIT_S
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            # Another process holds the file lock (e.g. a parallel partition run): wait for it.
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    # Timestamps are stored as TIMESTAMPTZ; read them back in UTC whatever the machine's zone.
    con.execute("SET TimeZone = 'UTC'")
    return con


def _to_arrow(df: pd.DataFrame) -> pa.Table:
    # Arrow gives DuckDB exact types (date -> DATE, tz-aware -> TIMESTAMPTZ) instead of sampling objects.
    data = pa.Table.from_pandas(df, preserve_index=False)
    # Empty or all-None object columns come out as Arrow null, which DuckDB would create as INTEGER.
    fields = [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in data.schema]
    return data.cast(pa.schema(fields))


def _all_equal(column: pd.Series, value: object) -> bool:
    # A DATE read back from DuckDB arrives as datetime64: compare it as a date.
    if isinstance(value, date) and not isinstance(value, datetime) and is_datetime64_any_dtype(column):
        column = column.dt.date
    return bool((column == value).all())


def replace_partition(
    db_path: str | Path,
    table: str,
    df: pd.DataFrame,
    *,
    partition: Mapping[str, object],
) -> int:
    """Replace the rows of `table` matching `partition` with `df`; returns the rows inserted.

    Partition columns missing from `df` are added with the partition value. One transaction: the table
    is created on first use (DuckDB types from the frame's Arrow schema), the partition deleted, the frame
    inserted by column name; any failure rolls back and leaves the previous partition as it was.
    """
    schema, name = _table(table)
    if not partition:
        raise ValueError("partition must name at least one column")
    for col in df.columns:
        _ident(col, "column")
    data = _to_arrow(df)
    for key, value in partition.items():
        _ident(key, "partition column")
        if value is None:
            raise ValueError(f"partition value for {key!r} is None")
        if key in df.columns and not _all_equal(df[key], value):
            # Rows outside the partition would survive the next replace of their own partition.
            raise ValueError(f"column {key!r} has values other than the partition value {value!r}")
        # Typed from the value, so even an empty frame creates a DATE/VARCHAR column, not NULL.
        column = pa.array([value] * len(df), type=pa.scalar(value).type)
        if key in df.columns:
            data = data.set_column(data.schema.get_field_index(key), key, column)
        else:
            data = data.append_column(key, column)
    where = " AND ".join(f'"{key}" = ?' for key in partition)
    qualified = f'"{schema}"."{name}"'
    con = _connect(db_path, read_only=False)
    try:
        con.register("_incoming", data)
        con.begin()
        try:
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            con.execute(f"CREATE TABLE IF NOT EXISTS {qualified} AS SELECT * FROM _incoming LIMIT 0")
            _add_new_columns(con, qualified, schema, name)
            con.execute(f"DELETE FROM {qualified} WHERE {where}", list(partition.values()))
            inserted = con.execute(f"INSERT INTO {qualified} BY NAME SELECT * FROM _incoming").fetchone()
            con.commit()
        except BaseException:
            con.rollback()
            raise
    finally:
        con.close()
    return int(inserted[0]) if inserted else 0


def _add_new_columns(con, qualified: str, schema: str, name: str) -> None:
    """A dataset that gained columns (e.g. more features) widens its table; older rows read NULL there."""
    existing = {row[0] for row in con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
        [schema, name]).fetchall()}
    for column, column_type, *_ in con.execute("DESCRIBE _incoming").fetchall():
        if column not in existing:
            con.execute(f'ALTER TABLE {qualified} ADD COLUMN "{column}" {column_type}')


def read_table(db_path: str | Path, sql_or_table: str) -> pd.DataFrame:
    """Read a whole table ("schema.name") or the result of a query, through a read-only connection."""
    is_table = re.match(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$", sql_or_table.strip())
    sql = f"SELECT * FROM {sql_or_table.strip()}" if is_table else sql_or_table
    con = _connect(db_path, read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def table_row_count(db_path: str | Path, table: str) -> int:
    schema, name = _table(table)
    con = _connect(db_path, read_only=True)
    try:
        return int(con.execute(f'SELECT count(*) FROM "{schema}"."{name}"').fetchone()[0])
    finally:
        con.close()
