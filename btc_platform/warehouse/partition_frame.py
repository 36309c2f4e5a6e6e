"""A frame checked and completed for one warehouse partition, as Arrow (shared by the stores)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime

import pandas as pd
import pyarrow as pa
from pandas.api.types import is_datetime64_any_dtype

IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def ident(name: object, what: str) -> str:
    if not isinstance(name, str) or not IDENT.match(name):
        raise ValueError(f"invalid {what} name {name!r}: must match {IDENT.pattern}")
    return name


def split_table(table: str) -> tuple[str, str]:
    """`schema.name` -> (schema, name)."""
    parts = table.split(".")
    if len(parts) != 2:
        raise ValueError(f"invalid table name {table!r}: expected 'schema.name'")
    return ident(parts[0], "schema"), ident(parts[1], "table")


def _all_equal(column: pd.Series, value: object) -> bool:
    if isinstance(value, date) and not isinstance(value, datetime) and is_datetime64_any_dtype(column):
        column = column.dt.date
    return bool((column == value).all())


def _portable(field: pa.Field) -> pa.Field:
    # Types both warehouses store as-is: all-None columns as strings (not Arrow null), microsecond
    # timestamps (BigQuery's precision), 64-bit numbers, plain strings for categoricals.
    t = field.type
    if pa.types.is_null(t) or pa.types.is_dictionary(t) or pa.types.is_large_string(t):
        return field.with_type(pa.string())
    if pa.types.is_timestamp(t):
        return field.with_type(pa.timestamp("us", tz=t.tz))
    if pa.types.is_integer(t):
        return field.with_type(pa.int64())
    if pa.types.is_floating(t):
        return field.with_type(pa.float64())
    return field


def with_partition_columns(df: pd.DataFrame, partition: Mapping[str, object]) -> pa.Table:
    """`df` as Arrow with the partition's columns set to its values.

    A partition column missing from `df` is added (typed from the value, so an empty frame still gets a
    DATE or STRING column); one present must hold only the partition's value, since rows outside the
    partition would survive the next replace of their own partition.
    """
    if not partition:
        raise ValueError("partition must name at least one column")
    for col in df.columns:
        ident(col, "column")
    data = pa.Table.from_pandas(df, preserve_index=False)
    data = data.cast(pa.schema([_portable(f) for f in data.schema]))
    for key, value in partition.items():
        ident(key, "partition column")
        if value is None:
            raise ValueError(f"partition value for {key!r} is None")
        if key in df.columns and not _all_equal(df[key], value):
            raise ValueError(f"column {key!r} has values other than the partition value {value!r}")
        column = pa.array([value] * len(df), type=pa.scalar(value).type)
        if key in df.columns:
            data = data.set_column(data.schema.get_field_index(key), key, column)
        else:
            data = data.append_column(key, column)
    return data.replace_schema_metadata(None)  # no pandas metadata in the Parquet the warehouse loads
