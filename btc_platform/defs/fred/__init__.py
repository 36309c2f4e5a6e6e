import dagster as dg

from btc_platform.defs.fred.assets import fred_vintages

defs = dg.Definitions(assets=[fred_vintages])
