import dagster as dg

from btc_platform.defs.features.assets import (
    candles,
    forward_targets_1h,
    forward_targets_90d_1h,
    multi_timeframe_features_1h,
    technical_features,
)
from btc_platform.defs.features.context import context_features_1h

defs = dg.Definitions(
    assets=[
        *candles.values(),
        *technical_features.values(),
        multi_timeframe_features_1h,
        context_features_1h,
        forward_targets_1h,
        forward_targets_90d_1h,
    ]
)
