"""Lake partitions loaded into the warehouse, one asset per table, replacing exactly that partition."""


import dagster as dg

from btc_platform.defs.coinbase.assets import candles_ref
from btc_platform.defs.automation import AUTOMATION, LONG_AUTOMATION
from btc_platform.defs.features.assets import processed_ref
from btc_platform.defs.monitoring.assets import coinbase_candles_1m_quality, require_clean
from btc_platform.defs.partitions import BACKFILL_POLICY, build_each_partition, daily_by_symbol
from btc_platform.defs.resources import WarehouseResource, LakeResource, warehouse_kind
from btc_platform.defs.warehouse.table_docs import COLUMN_SCHEMA, column_schema, table_docs


def lake_table_load(name: str, upstream: str, table: str, ref_of,
                    automation: dg.AutomationCondition = AUTOMATION, quality=None) -> dg.AssetsDefinition:
    """`quality`: the asset whose blocking checks gate a raw table; its summary must have checked the very
    rows loaded (a blocked or since re-ingested partition is refused, naming it)."""

    @dg.asset(
        name=name,
        group_name="warehouse",
        partitions_def=daily_by_symbol,
        backfill_policy=BACKFILL_POLICY,
        # On the quality asset too, so its failed blocking check stops the load in the same run.
        deps=[upstream, *([quality] if quality is not None else [])],
        kinds={warehouse_kind()},
        description=f"`{table}` in the warehouse: the lake partition of `{upstream}`, loaded idempotently "
        "(re-running a partition replaces it).",
        metadata={"table": table, COLUMN_SCHEMA: column_schema(table)},
        automation_condition=automation,
    )
    def _load(context: dg.AssetExecutionContext, lake: LakeResource, warehouse: WarehouseResource):
        store = lake.lake()

        def build(key, day, symbol):
            ref = ref_of(day, symbol)
            frame = store.read(ref)
            if frame is None:
                raise dg.Failure(f"{key}: nothing at {store.display_path(ref)} to load into {table}")
            if quality is not None:
                require_clean(store, ref, f"{key} (not loaded into {table})", frame)
            rows = warehouse.replace_partition(table, frame, {"partition_date": day, "symbol": symbol},
                                               **table_docs(context, frame.columns))
            return {"dagster/row_count": rows, "table": table}

        return build_each_partition(context, build)

    return _load


warehouse_loads = [
    lake_table_load("warehouse_coinbase_candles_1m", "coinbase_candles_1m", "raw.coinbase_candles_1m", candles_ref,
                    quality=coinbase_candles_1m_quality),
    lake_table_load("warehouse_candles_1h", "candles_1h", "processed.candles_1h",
                    lambda d, s: processed_ref("candles", d, s)),
    lake_table_load("warehouse_technical_features_1h", "technical_features_1h", "processed.technical_features_1h",
                    lambda d, s: processed_ref("technical_features", d, s)),
    lake_table_load("warehouse_forward_targets_1h", "forward_targets_1h", "processed.forward_targets_1h",
                    lambda d, s: processed_ref("forward_targets", d, s)),
    lake_table_load("warehouse_context_features_1h", "context_features_1h", "processed.context_features_1h",
                    lambda d, s: processed_ref("context_features", d, s)),
    lake_table_load("warehouse_multi_timeframe_features_1h", "multi_timeframe_features_1h",
                    "processed.multi_timeframe_features_1h", lambda d, s: processed_ref("multi_timeframe_features", d, s)),
    lake_table_load("warehouse_forward_targets_90d_1h", "forward_targets_90d_1h", "processed.forward_targets_90d_1h",
                    lambda d, s: processed_ref("forward_targets_90d", d, s), automation=LONG_AUTOMATION),
    lake_table_load("warehouse_candles_1d", "candles_1d", "processed.candles_1d",
                    lambda d, s: processed_ref("candles", d, s, "1d")),
    lake_table_load("warehouse_technical_features_1d", "technical_features_1d", "processed.technical_features_1d",
                    lambda d, s: processed_ref("technical_features", d, s, "1d")),
]
