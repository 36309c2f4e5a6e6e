import dagster as dg

from btc_platform.defs.cryptoquant.assets import cryptoquant_onchain_metrics

defs = dg.Definitions(assets=[cryptoquant_onchain_metrics])
