"""DuckDB store: replace one partition of a table per call, atomically.

DuckDB allows a single writer process per file, so every call opens, works and closes its own
connection instead of holding one; a call that finds the file locked by another process retries briefly.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from pathlib import Path

import duckdb
import pandas as pd

from btc_platform.warehouse.partition_frame import split_table, with_partition_columns

_LOCK_WAIT_S = 30.0


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
    schema, name = split_table(table)
    data = with_partition_columns(df, partition)
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
    schema, name = split_table(table)
    con = _connect(db_path, read_only=True)
    try:
        return int(con.execute(f'SELECT count(*) FROM "{schema}"."{name}"').fetchone()[0])
    finally:
        con.close()
