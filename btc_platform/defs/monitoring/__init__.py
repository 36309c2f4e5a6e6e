import dagster as dg

from btc_platform.defs.monitoring.assets import coinbase_candles_1m_quality, coverage_report
from btc_platform.defs.monitoring.freshness import series_freshness

defs = dg.Definitions(assets=[coinbase_candles_1m_quality, coverage_report, series_freshness])
