"""Quality of each ingested partition: a JSON summary beside the data, and asset checks.

Duplicates, OHLC violations and rows outside the partition's day are blocking: downstream assets in
the same run do not execute, automation waits (`all_deps_blocking_checks_passed`), and the processed
layer refuses a partition whose summary records them.
"""


import dagster as dg
import pandas as pd

from btc_platform.defs.coinbase.assets import candles_ref, coinbase_candles_1m
from btc_platform.defs.partitions import BACKFILL_POLICY, build_each_partition, day_bounds, daily_by_symbol
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
    backfill_policy=BACKFILL_POLICY,
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
    store = lake.lake()
    summaries: dict[str, dict] = {}

    def build(key, day, symbol):
        start, end = day_bounds(day)
        ref = candles_ref(day, symbol)
        frame = store.read(ref)
        if frame is None:
            raise dg.Failure(f"{key}: no Coinbase candles at {store.display_path(ref)}; materialize coinbase_candles_1m first")
        summary = summarize_candles(frame, start=pd.Timestamp(start), end=pd.Timestamp(end),
                                    interval=pd.Timedelta(minutes=1), dataset="coinbase_candles_1m", partition=key)
        summary["listed"] = day >= PRODUCT_START_DATES[symbol]
        summary["blocking_failures"] = blocking_failures(summary)
        summary["warnings"] = warnings(summary, min_coverage=MIN_COVERAGE) if summary["listed"] else []
        summaries[key] = summary
        return {
            "summary_path": dg.MetadataValue.path(store.write_json(ref, SUMMARY_FILE, summary)),
            **{k: summary[k] for k in ("present_bars", "expected_bars", "gap_count", "largest_gap_bars",
                                       "duplicates", "ohlc_violations")},
            "coverage": float(summary["coverage"]),
        }

    result = build_each_partition(context, build)
    return dg.MaterializeResult(metadata=result.metadata, check_results=check_results(summaries))


def check_results(summaries: dict[str, dict]) -> list[dg.AssetCheckResult]:
    """One result per check over the run's partitions, naming the partitions that fail it."""

    def failing(predicate) -> list[str]:
        return [key for key, s in summaries.items() if predicate(s)]

    counts = {
        "no_duplicates": failing(lambda s: s["duplicates"] > 0),
        "ohlc_valid": failing(lambda s: s["ohlc_violations"] > 0),
        "within_partition": failing(lambda s: s["out_of_window"] > 0),
    }
    results = [
        dg.AssetCheckResult(check_name=name, passed=not bad, metadata={"failing_partitions": bad[:50]})
        for name, bad in counts.items()
    ]
    low = failing(lambda s: bool(s["warnings"]))
    results.append(dg.AssetCheckResult(
        check_name="coverage", passed=not low, severity=dg.AssetCheckSeverity.WARN,
        metadata={"min_coverage": min(float(s["coverage"]) for s in summaries.values()),
                  "failing_partitions": low[:50]},
    ))
    return results


def require_clean(store, ref, partition: str) -> None:
    """Refuse to build on a partition whose quality summary is missing or records blocking failures."""
    summary = store.read_json(ref, SUMMARY_FILE)
    if summary is None:
        raise dg.Failure(f"{partition}: no quality summary beside {store.display_path(ref)}; "
                         "materialize coinbase_candles_1m_quality first")
    if summary.get("blocking_failures"):
        raise dg.Failure(f"{partition}: blocked by quality checks: {'; '.join(summary['blocking_failures'])}")
