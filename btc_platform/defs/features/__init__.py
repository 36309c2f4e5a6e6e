import dagster as dg

from btc_platform.defs.features.context import context_features_1h
from btc_platform.defs.features.assets import (
    candles_1h,
    forward_targets_1h,
    forward_targets_90d_1h,
    technical_features_1h,
)

defs = dg.Definitions(
    assets=[candles_1h, technical_features_1h, context_features_1h, forward_targets_1h, forward_targets_90d_1h]
)
