"""Quality of each ingested partition: a JSON summary beside the data, and asset checks.

Duplicates, OHLC violations, rows outside the partition's day, future timestamps and coverage under
the threshold (minutes without trades told apart from missing data) are blocking: downstream assets
in the same run do not execute, automation waits (`all_deps_blocking_checks_passed`), and the
processed layer refuses a partition whose summary records them. Outliers and low raw coverage warn.
"""


import base64
import hashlib
import io
from datetime import date, timedelta

import dagster as dg
import pandas as pd

from btc_platform.defs.coinbase.assets import candles_ref, coinbase_candles_1m, quality_evidence
from btc_platform.defs.partitions import BACKFILL_POLICY, build_each_partition, day_bounds, daily_by_symbol
from btc_platform.defs.resources import LakeResource
from btc_platform.monitoring.coverage_chart import coverage_matrix, write_coverage_png, write_coverage_svg
from btc_platform.monitoring.quality import blocking_failures, summarize_candles, warnings
from btc_platform.vendors.coinbase import PRODUCT_START_DATES

SUMMARY_FILE = "_quality.json"
MIN_COVERAGE = 0.9

ASSET = "coinbase_candles_1m_quality"
BLOCKING_CHECKS = {
    "no_duplicates": "no (symbol, ts) appears twice",
    "ohlc_valid": "low <= open, close <= high; prices > 0; volume >= 0",
    "within_partition": "every bar's ts lies inside the partition's UTC day",
    "no_future_timestamps": "no bar is stamped after the time it was checked",
    "coverage": f"present + no-trade minutes cover at least {MIN_COVERAGE:.0%} of the expected bars",
}
WARNING_CHECKS = {
    "no_outliers": "no 1-minute return is a robust (median/MAD) outlier",
    "raw_coverage": "present bars cover at least 95% of the expected bars",
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
        *(dg.AssetCheckSpec(name, asset=ASSET, description=d) for name, d in WARNING_CHECKS.items()),
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
                                    interval=pd.Timedelta(minutes=1), dataset="coinbase_candles_1m", partition=key,
                                    **quality_evidence(store, day, symbol))
        summary["listed"] = day >= PRODUCT_START_DATES[symbol]
        summary["blocking_failures"] = blocking_failures(summary, min_coverage=MIN_COVERAGE)
        summary["warnings"] = warnings(summary) if summary["listed"] else []
        # What was checked: the gate compares it with the data it is about to use (require_clean).
        summary["content_sha256"] = content_fingerprint(frame)
        summaries[key] = summary
        return {
            "summary_path": dg.MetadataValue.path(store.write_json(ref, SUMMARY_FILE, summary)),
            **{k: summary[k] for k in ("present_bars", "expected_bars", "missing_bars", "no_trade_bars",
                                       "gap_count", "largest_gap_bars", "duplicates", "ohlc_violations",
                                       "outliers")},
            "coverage": float(summary["coverage"]),
            "coverage_adjusted": float(summary["coverage_adjusted"]),
        }

    result = build_each_partition(context, build)
    return dg.MaterializeResult(metadata=result.metadata, check_results=check_results(summaries))


def check_results(summaries: dict[str, dict]) -> list[dg.AssetCheckResult]:
    """One result per check over the run's partitions, naming the partitions that fail it."""

    def failing(predicate) -> list[str]:
        return [key for key, s in summaries.items() if predicate(s)]

    def low_coverage(s, key, threshold):
        return s["listed"] and s["expected_bars"] > 0 and float(s[key]) < threshold

    blocking = {
        "no_duplicates": failing(lambda s: s["duplicates"] > 0),
        "ohlc_valid": failing(lambda s: s["ohlc_violations"] > 0),
        "within_partition": failing(lambda s: s["out_of_window"] > 0),
        "no_future_timestamps": failing(lambda s: s["future_timestamps"] > 0),
        "coverage": failing(lambda s: low_coverage(s, "coverage_adjusted", MIN_COVERAGE)),
    }
    warned = {
        "no_outliers": failing(lambda s: s["outliers"] > 0),
        "raw_coverage": failing(lambda s: low_coverage(s, "coverage", 0.95)),
    }
    lowest = min(float(s["coverage_adjusted"]) for s in summaries.values())
    return [
        *(dg.AssetCheckResult(check_name=name, passed=not bad,
                              metadata={"failing_partitions": bad[:50], "lowest_coverage_adjusted": lowest})
          for name, bad in blocking.items()),
        *(dg.AssetCheckResult(check_name=name, passed=not bad, severity=dg.AssetCheckSeverity.WARN,
                              metadata={"failing_partitions": bad[:50]})
          for name, bad in warned.items()),
    ]


class CoverageReportConfig(dg.Config):
    days: int = 90  # the window the chart shows, ending today (or at the latest summary)


@dg.asset(
    group_name="monitoring",
    deps=[coinbase_candles_1m_quality],
    kinds={"png", "svg"},
    description="Coverage chart (day x dataset): the quality summaries of the last days as a heatmap "
    "(PNG shown inline, SVG with labels), written to the lake's _reports folder.",
    automation_condition=dg.AutomationCondition.on_cron("30 3 * * *"),
)
def coverage_report(context: dg.AssetExecutionContext, config: CoverageReportConfig,
                    lake: LakeResource) -> dg.MaterializeResult:
    store = lake.lake()
    materialized = context.instance.get_materialized_partitions(coinbase_candles_1m_quality.key)
    keys = sorted(materialized, key=lambda k: k.split("|")[0])
    last = max((date.fromisoformat(k.split("|")[0]) for k in keys), default=date.today())
    first = last - timedelta(days=config.days - 1)
    summaries = []
    for key in keys:
        day_text, symbol = key.split("|")
        if first <= date.fromisoformat(day_text) <= last:
            summary = store.read_json(candles_ref(date.fromisoformat(day_text), symbol), SUMMARY_FILE)
            if summary:
                summaries.append(summary)
    matrix = coverage_matrix(summaries)
    png, svg = io.BytesIO(), io.BytesIO()
    write_coverage_png(matrix, png)
    write_coverage_svg(matrix, svg)
    png_path = store.put_bytes("_reports/coverage/coverage.png", png.getvalue())
    svg_path = store.put_bytes("_reports/coverage/coverage.svg", svg.getvalue())
    inline = base64.b64encode(png.getvalue()).decode()
    return dg.MaterializeResult(metadata={
        "chart": dg.MetadataValue.md(f"![coverage by day and dataset](data:image/png;base64,{inline})"),
        "png": dg.MetadataValue.path(png_path),
        "svg": dg.MetadataValue.path(svg_path),
        "days": len(matrix.index),
        "datasets": dg.MetadataValue.json([str(c) for c in matrix.columns]),
        "lowest_coverage": float(matrix.min().min()) if matrix.size else None,
    })


def content_fingerprint(frame: pd.DataFrame) -> str:
    """A hash of a frame's columns and values: equal frames (as read back from the lake) hash alike."""
    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def require_clean(store, ref, partition: str, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """The partition's data, refused unless its quality summary checked exactly this data and recorded
    no blocking failure. A summary left from an earlier ingest (the data was replaced since) is stale.

    Pass `frame` when it is already read, so the data checked is the data used."""
    summary = store.read_json(ref, SUMMARY_FILE)
    if summary is None:
        raise dg.Failure(f"{partition}: no quality summary beside {store.display_path(ref)}; "
                         "materialize coinbase_candles_1m_quality first")
    frame = store.read(ref) if frame is None else frame
    if frame is None:
        raise dg.Failure(f"{partition}: no data at {store.display_path(ref)}")
    if summary.get("content_sha256") != content_fingerprint(frame):
        raise dg.Failure(f"{partition}: the quality summary beside {store.display_path(ref)} checked other data "
                         "than the partition holds now (it was re-ingested since); materialize "
                         "coinbase_candles_1m_quality for it again")
    if summary.get("blocking_failures"):
        raise dg.Failure(f"{partition}: blocked by quality checks: {'; '.join(summary['blocking_failures'])}")
    return frame
