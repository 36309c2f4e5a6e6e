import dagster as dg

from btc_platform.defs.monitoring.assets import coinbase_candles_1m_quality, coverage_report

defs = dg.Definitions(assets=[coinbase_candles_1m_quality, coverage_report])
