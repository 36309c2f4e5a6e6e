import dagster as dg

from btc_platform.defs.features.assets import candles_1h, forward_targets_1h, technical_features_1h

defs = dg.Definitions(assets=[candles_1h, technical_features_1h, forward_targets_1h])
