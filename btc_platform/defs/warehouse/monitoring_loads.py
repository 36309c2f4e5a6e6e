"""Monitoring facts loaded into the warehouse, so dbt's monitoring views can show them over time:
the daily quality summary of each candle partition, and a daily snapshot of every vendor endpoint."""

from dataclasses import asdict
from datetime import datetime, timezone

import dagster as dg
import pandas as pd

from btc_platform.defs.coinbase.assets import candles_ref
from btc_platform.defs.monitoring.assets import SUMMARY_FILE, coinbase_candles_1m_quality
from btc_platform.defs.partitions import BACKFILL_POLICY, build_each_partition, daily_by_symbol
from btc_platform.defs.resources import LakeResource, WarehouseResource, warehouse_kind
from btc_platform.defs.vendor_status.assets import vendor_status
from btc_platform.defs.warehouse.table_docs import COLUMN_SCHEMA, column_schema, table_docs

QUALITY_TABLE = "raw.candle_quality"
VENDOR_STATUS_TABLE = "raw.vendor_status_daily"
QUALITY_COLUMNS = ["dataset", "listed", "expected_bars", "present_bars", "missing_bars", "no_trade_bars",
                   "coverage", "coverage_adjusted", "gap_count", "largest_gap_bars", "duplicates",
                   "ohlc_violations", "outliers"]


def quality_row(summary: dict, day, symbol: str) -> pd.DataFrame:
    """One row per (symbol, day); `ts` is the day's start so the row keys like every other table."""
    row = {"ts": pd.Timestamp(day, tz="UTC"), "symbol": symbol,
           **{c: summary.get(c) for c in QUALITY_COLUMNS},
           "blocking_failures": ",".join(summary.get("blocking_failures") or [])}
    frame = pd.DataFrame([row])
    return frame.astype({"coverage": "float64", "coverage_adjusted": "float64", "listed": "bool"})


@dg.asset(
    group_name="warehouse",
    partitions_def=daily_by_symbol,
    backfill_policy=BACKFILL_POLICY,
    deps=[coinbase_candles_1m_quality],
    kinds={warehouse_kind()},
    description=f"`{QUALITY_TABLE}`: the quality summary of each Coinbase candle partition as one row "
    "(coverage, missing and no-trade minutes, gaps, blocking failures), for the coverage view.",
    metadata={"table": QUALITY_TABLE, COLUMN_SCHEMA: column_schema(QUALITY_TABLE)},
    automation_condition=dg.AutomationCondition.eager(),
)
def warehouse_candle_quality(context: dg.AssetExecutionContext, lake: LakeResource, warehouse: WarehouseResource):
    store = lake.lake()

    def build(key, day, symbol):
        ref = candles_ref(day, symbol)
        summary = store.read_json(ref, SUMMARY_FILE)
        if summary is None:
            raise dg.Failure(f"{key}: no quality summary at {store.display_path(ref)}; "
                             "materialize coinbase_candles_1m_quality first")
        frame = quality_row(summary, day, symbol)
        rows = warehouse.replace_partition(QUALITY_TABLE, frame, {"partition_date": day, "symbol": symbol},
                                           **table_docs(context, frame.columns))
        return {"dagster/row_count": rows, "table": QUALITY_TABLE}

    return build_each_partition(context, build)


@dg.asset(
    group_name="warehouse",
    deps=[vendor_status],
    kinds={warehouse_kind()},
    description=f"`{VENDOR_STATUS_TABLE}`: every vendor endpoint's status, one snapshot per day (a later "
    "snapshot the same day replaces it), for the vendor status view.",
    metadata={"table": VENDOR_STATUS_TABLE, COLUMN_SCHEMA: column_schema(VENDOR_STATUS_TABLE)},
    automation_condition=dg.AutomationCondition.eager(),
)
def warehouse_vendor_status(context: dg.AssetExecutionContext, lake: LakeResource,
                            warehouse: WarehouseResource) -> dg.MaterializeResult:
    checked_at = datetime.now(timezone.utc)
    endpoints = [asdict(s) for s in lake.vendor_status().all()]
    frame = pd.DataFrame(endpoints, columns=["vendor", "endpoint", "status", "last_success", "last_failure",
                                             "last_failure_status", "last_failure_message"])
    # `symbol` keeps the table's clustering key; a vendor endpoint has none.
    frame = frame.assign(symbol="", checked_at=pd.Timestamp(checked_at)).astype({"last_success": "string",
                                                                                 "last_failure": "string"})
    rows = warehouse.replace_partition(VENDOR_STATUS_TABLE, frame, {"partition_date": checked_at.date()},
                                       **table_docs(context, frame.columns))
    context.log.info(f"{rows} endpoint statuses snapshotted for {checked_at.date()}")
    return dg.MaterializeResult(metadata={"dagster/row_count": rows, "table": VENDOR_STATUS_TABLE})


monitoring_loads = [warehouse_candle_quality, warehouse_vendor_status]
