"""Daily ingestion: every product's candles for the UTC day that just closed."""

import dagster as dg

from btc_platform.defs.partitions import daily_by_symbol

# Selected by key: the quality asset lives in the monitoring area, which imports this one.
coinbase_daily_job = dg.define_asset_job(
    "coinbase_daily_ingest",
    selection=dg.AssetSelection.assets("coinbase_candles_1m", "coinbase_candles_1m_quality"),
    partitions_def=daily_by_symbol,
    description="Ingest and check one UTC day of Coinbase candles for one product.",
)

# One run per product for the latest complete day, shortly after midnight UTC; on out of the box, so a
# new instance keeps itself current without anyone switching it on.
coinbase_daily_schedule = dg.build_schedule_from_partitioned_job(
    coinbase_daily_job, hour_of_day=0, minute_of_hour=10, default_status=dg.DefaultScheduleStatus.RUNNING
)
