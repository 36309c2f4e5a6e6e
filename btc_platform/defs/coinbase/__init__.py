import dagster as dg

from btc_platform.defs.coinbase.assets import coinbase_candles_1m
from btc_platform.defs.coinbase.schedules import coinbase_daily_job, coinbase_daily_schedule

defs = dg.Definitions(
    assets=[coinbase_candles_1m], jobs=[coinbase_daily_job], schedules=[coinbase_daily_schedule]
)
