"""Materialization metadata shared by all areas: row counts, paths, a preview table."""

from __future__ import annotations

import math

import dagster as dg
import pandas as pd

_TYPES = {"f": "float", "i": "int", "u": "int", "b": "bool", "M": "timestamp"}


def preview_table(df: pd.DataFrame, rows: int = 5, max_columns: int = 12) -> dg.MetadataValue:
    """The first rows as a Dagster table, for the asset's page in the UI."""
    head = df.iloc[:rows, :max_columns]
    columns = [dg.TableColumn(str(c), _TYPES.get(head[c].dtype.kind, "string")) for c in head.columns]
    records = []
    for row in head.itertuples(index=False):
        records.append(dg.TableRecord({str(c): _cell(v) for c, v in zip(head.columns, row)}))
    return dg.MetadataValue.table(records=records, schema=dg.TableSchema(columns=columns))


def _cell(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item"):
        value = value.item()
    return value if isinstance(value, (int, float, bool, str)) else str(value)


def frame_metadata(df: pd.DataFrame, path: str | None = None) -> dict:
    meta = {"dagster/row_count": len(df), "preview": preview_table(df)}
    if path:
        meta["path"] = dg.MetadataValue.path(path)
    return meta
