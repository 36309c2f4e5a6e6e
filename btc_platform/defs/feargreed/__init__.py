import dagster as dg

from btc_platform.defs.feargreed.assets import fear_greed_index

defs = dg.Definitions(assets=[fear_greed_index])
