"""Quality of each ingested partition: a JSON summary beside the data, and asset checks.

Duplicates, OHLC violations and rows outside the partition's day are blocking: downstream assets in
the same run do not execute, automation waits (`all_deps_blocking_checks_passed`), and the processed
layer refuses a partition whose summary records them.
"""


import dagster as dg
import pandas as pd

from btc_platform.defs.coinbase.assets import candles_ref, coinbase_candles_1m
from btc_platform.defs.partitions import date_symbol, day_bounds, daily_by_symbol
from btc_platform.defs.resources import LakeResource
from btc_platform.monitoring.quality import blocking_failures, summarize_candles, warnings
from btc_platform.vendors.coinbase import PRODUCT_START_DATES

SUMMARY_FILE = "_quality.json"
MIN_COVERAGE = 0.95

ASSET = "coinbase_candles_1m_quality"
BLOCKING_CHECKS = {
    "no_duplicates": "no (symbol, ts) appears twice",
    "ohlc_valid": "low <= open, close <= high; prices > 0; volume >= 0",
    "within_partition": "every bar's ts lies inside the partition's UTC day",
}


@dg.asset(
    group_name="monitoring",
    partitions_def=daily_by_symbol,
    deps=[coinbase_candles_1m],
    kinds={"python", "json"},
    description="Per-partition quality summary of the Coinbase 1-minute candles, written beside the data.",
    check_specs=[
        *(dg.AssetCheckSpec(name, asset=ASSET, description=d, blocking=True) for name, d in BLOCKING_CHECKS.items()),
        dg.AssetCheckSpec("coverage", asset=ASSET, description=f"present bars / expected bars >= {MIN_COVERAGE}"),
    ],
    automation_condition=dg.AutomationCondition.eager(),
)
def coinbase_candles_1m_quality(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    day, symbol = date_symbol(context)
    start, end = day_bounds(day)
    ref = candles_ref(day, symbol)
    store = lake.lake()
    frame = store.read(ref)
    if frame is None:
        raise dg.Failure(f"no Coinbase candles at {store.display_path(ref)}: materialize coinbase_candles_1m first")
    summary = summarize_candles(
        frame,
        start=pd.Timestamp(start),
        end=pd.Timestamp(end),
        interval=pd.Timedelta(minutes=1),
        dataset="coinbase_candles_1m",
        partition=context.partition_key,
    )
    summary["listed"] = day >= PRODUCT_START_DATES[symbol]
    blocking = blocking_failures(summary)
    summary["blocking_failures"] = blocking
    path = store.write_json(ref, SUMMARY_FILE, summary)
    low_coverage = warnings(summary, min_coverage=MIN_COVERAGE) if summary["listed"] else []
    return dg.MaterializeResult(
        metadata={
            "summary_path": dg.MetadataValue.path(path),
            "coverage": float(summary["coverage"]),
            "present_bars": summary["present_bars"],
            "expected_bars": summary["expected_bars"],
            "gap_count": summary["gap_count"],
            "largest_gap_bars": summary["largest_gap_bars"],
            "duplicates": summary["duplicates"],
            "ohlc_violations": summary["ohlc_violations"],
        },
        check_results=[
            dg.AssetCheckResult(check_name="no_duplicates", passed=summary["duplicates"] == 0,
                                metadata={"duplicates": summary["duplicates"]}),
            dg.AssetCheckResult(check_name="ohlc_valid", passed=summary["ohlc_violations"] == 0,
                                metadata={"ohlc_violations": summary["ohlc_violations"]}),
            dg.AssetCheckResult(check_name="within_partition", passed=summary["out_of_window"] == 0,
                                metadata={"out_of_window": summary["out_of_window"]}),
            dg.AssetCheckResult(check_name="coverage", passed=not low_coverage,
                                severity=dg.AssetCheckSeverity.WARN,
                                metadata={"coverage": float(summary["coverage"]), "listed": summary["listed"]}),
        ],
    )


def require_clean(store, ref, partition: str) -> None:
    """Refuse to build on a partition whose quality summary is missing or records blocking failures."""
    summary = store.read_json(ref, SUMMARY_FILE)
    if summary is None:
        raise dg.Failure(f"{partition}: no quality summary beside {store.display_path(ref)}; "
                         "materialize coinbase_candles_1m_quality first")
    if summary.get("blocking_failures"):
        raise dg.Failure(f"{partition}: blocked by quality checks: {'; '.join(summary['blocking_failures'])}")
