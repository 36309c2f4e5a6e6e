import dagster as dg

from btc_platform.defs.alphavantage.assets import alphavantage_daily

defs = dg.Definitions(assets=[alphavantage_daily])
