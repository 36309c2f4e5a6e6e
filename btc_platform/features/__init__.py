"""Pure feature functions over pandas frames (no Dagster here)."""

from btc_platform.features.resample import resample_ohlcv
from btc_platform.features.targets import compute_forward_returns
from btc_platform.features.technical import FEATURE_COLUMNS, compute_technical_features

__all__ = ["FEATURE_COLUMNS", "compute_forward_returns", "compute_technical_features", "resample_ohlcv"]
