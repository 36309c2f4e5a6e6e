"""Table and column descriptions: declared on the load assets, kept on the warehouse tables."""

from collections.abc import Iterable

import dagster as dg

from btc_platform.warehouse.columns import descriptions, table_columns

COLUMN_SCHEMA = "dagster/column_schema"


def column_schema(table: str) -> dg.TableSchema:
    """The columns `table` is known to hold, described (types are the warehouse's, set at load)."""
    return dg.TableSchema(columns=[dg.TableColumn(name, type="", description=text)
                                   for name, text in descriptions(table_columns(table)).items()])


def table_docs(context: dg.AssetExecutionContext, columns: Iterable[str]) -> dict:
    """The running asset's description and column descriptions, as `replace_partition` keywords.

    Columns its column schema does not list yet (a dataset that grew) get the registry's description.
    """
    spec = context.assets_def.specs_by_key[context.asset_key]
    schema = spec.metadata.get(COLUMN_SCHEMA)
    declared = {c.name: c.description for c in schema.columns if c.description} if schema else {}
    return {"description": spec.description, "column_descriptions": {**descriptions(columns), **declared}}
