import dagster as dg

from btc_platform.defs.datasets.assets import DATASET_ASSETS

defs = dg.Definitions(assets=DATASET_ASSETS)
