import dagster as dg

from btc_platform.defs.datasets.assets import instructions_24h, training_splits_1h

defs = dg.Definitions(assets=[training_splits_1h, instructions_24h])
