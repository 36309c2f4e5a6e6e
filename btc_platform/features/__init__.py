"""Pure feature functions over pandas frames (no Dagster here).

- resample / timeframes: candles per timeframe, multi-timeframe joins on closed bars;
- technical: 82 indicators per timeframe (equal to `ta` where it has them), with the lookback each needs;
- grid: the same on the full bar grid (no window spans a missing day; partial bars' volume features null);
- alignment / market_structure: macro, on-chain, sentiment and funding/basis as of when each value was known;
- targets: forward returns, prices and labels, looked up by timestamp.
"""

from btc_platform.features.alignment import (
    MACRO_COLUMNS,
    ONCHAIN_COLUMNS,
    asof_join,
    macro_features,
    onchain_features,
    sentiment_features,
)
from btc_platform.features.grid import technical_features_on_grid
from btc_platform.features.market_structure import MARKET_STRUCTURE_COLUMNS, market_structure_features
from btc_platform.features.resample import resample_ohlcv
from btc_platform.features.targets import compute_forward_returns, compute_targets, lookahead, lookahead_partitions
from btc_platform.features.technical import (
    CORE_COLUMNS,
    FEATURE_COLUMNS,
    TA_COLUMNS,
    compute_technical_features,
    lookback_bars,
)
from btc_platform.features.timeframes import TIMEFRAMES, join_higher_timeframes, resample_all

__all__ = [
    "CORE_COLUMNS", "FEATURE_COLUMNS", "MACRO_COLUMNS", "MARKET_STRUCTURE_COLUMNS", "ONCHAIN_COLUMNS",
    "TA_COLUMNS", "TIMEFRAMES", "asof_join", "compute_forward_returns", "compute_targets",
    "compute_technical_features", "join_higher_timeframes", "lookahead", "lookahead_partitions",
    "lookback_bars", "macro_features", "market_structure_features", "onchain_features", "resample_all",
    "resample_ohlcv", "sentiment_features", "technical_features_on_grid",
]
