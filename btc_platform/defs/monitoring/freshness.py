"""Freshness of the slow series (FRED, Alpha Vantage, CryptoQuant, Fear & Greed).

Staleness is measured against the end of the latest ingested day of each dataset, not the wall
clock: it asks whether a vendor stopped publishing a series, which a backfill of history can answer
too. Whether ingestion itself keeps up is what the daily schedules and the vendor status show.
"""

from datetime import date, timedelta

import dagster as dg
import pandas as pd

from btc_platform.defs.partitions import day_bounds
from btc_platform.defs.resources import LakeResource
from btc_platform.lake import PartitionRef
from btc_platform.monitoring.quality import summarize_series
from btc_platform.vendors import fred

FRED_FREQUENCY = {"d": "B", "m": "MS", "q": "QS"}
# asset -> (lake dataset, column naming the series, observation time column, its frequency, days read)
SLOW_SERIES = {
    "fred_vintages": ("fred_vintages", "series_id", "date", lambda s: FRED_FREQUENCY[fred.SERIES[s].frequency], 120),
    "alphavantage_daily": ("alphavantage_daily", "series", "ts", lambda s: "B", 21),
    "cryptoquant_onchain_metrics": ("cryptoquant_onchain", "metric", "ts", lambda s: "D", 10),
    "fear_greed_index": ("fear_greed_index", None, "ts", lambda s: "D", 10),
}


def _summaries(context, store, asset: str) -> list[dict]:
    dataset, by, ts_col, frequency, days = SLOW_SERIES[asset]
    materialized = context.instance.get_materialized_partitions(dg.AssetKey(asset))
    if not materialized:
        return []
    last = max(date.fromisoformat(k) for k in materialized)
    frame = store.read_many([PartitionRef("raw", dataset, last - timedelta(days=n)) for n in range(days, -1, -1)])
    now = pd.Timestamp(day_bounds(last)[1])
    groups = frame.groupby(by) if by and len(frame) else [(asset, frame)]
    return [
        summarize_series(part, ts_col=ts_col, expected_frequency=frequency(name), now=now,
                         key_cols=["series_id", "realtime_start"] if asset == "fred_vintages" else (),
                         dataset=asset, partition=str(name))
        for name, part in groups
    ]


@dg.asset(
    group_name="monitoring",
    deps=list(SLOW_SERIES),
    kinds={"python", "json"},
    description="Freshness of every slow series (last observation, staleness against the latest ingested "
    "day, period coverage, nulls), with a warning check per dataset when a series went stale.",
    check_specs=[dg.AssetCheckSpec(f"{asset}_fresh", asset="series_freshness",
                                   description=f"no series of {asset} is stale") for asset in SLOW_SERIES],
    automation_condition=dg.AutomationCondition.on_cron("45 3 * * *"),
)
def series_freshness(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    store = lake.lake()
    summaries = {asset: _summaries(context, store, asset) for asset in SLOW_SERIES}
    path = store.put_bytes("_reports/freshness.json", pd.Series(summaries).to_json(indent=2).encode())
    stale = {asset: [s["partition"] for s in items if s["stale"]] for asset, items in summaries.items()}
    return dg.MaterializeResult(
        metadata={"report": dg.MetadataValue.path(path),
                  "series": sum(len(items) for items in summaries.values()),
                  "stale": dg.MetadataValue.json(stale)},
        check_results=[
            dg.AssetCheckResult(check_name=f"{asset}_fresh", passed=bool(summaries[asset]) and not stale[asset],
                                severity=dg.AssetCheckSeverity.WARN,
                                metadata={"stale_series": stale[asset], "series": len(summaries[asset])})
            for asset in SLOW_SERIES
        ],
    )
