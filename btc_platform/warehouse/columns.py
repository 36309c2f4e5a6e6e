"""Column descriptions for the warehouse tables, by column name (no Dagster here).

The load assets put these in their `dagster/column_schema`; the BigQuery store writes them on the tables.
Named columns have a sentence each (the ones in dbt_project/models/sources.yml say the same); families
of feature columns (`rsi_14`, `roc_20`, `vix_age_hours`, `macd_histogram_4h`, ...) get a generated one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from btc_platform.features import FEATURE_COLUMNS, MACRO_COLUMNS, MARKET_STRUCTURE_COLUMNS, ONCHAIN_COLUMNS
from btc_platform.features.grid import FLAG_COLUMNS
from btc_platform.features.market_structure import REASON_COLUMNS
from btc_platform.features.resample import OUTPUT_COLUMNS as CANDLE_1H_COLUMNS
from btc_platform.vendors.coinbase import CANDLE_COLUMNS

NAMED = {
    "ts": "Bar open time (UTC).",
    "symbol": "Product id, e.g. BTC-USD.",
    "open": "First trade price in the bar.",
    "high": "Highest trade price in the bar.",
    "low": "Lowest trade price in the bar.",
    "close": "Last trade price in the bar.",
    "volume": "Base-currency volume traded in the bar.",
    "source": "Vendor that supplied the row, or fallback:<vendor>.",
    "ingested_at": "When the row was fetched (UTC).",
    "partition_date": "UTC day of the Dagster partition that loaded the row.",
    "n_source_bars": "Number of 1-minute bars aggregated (0 for a filled bar).",
    "is_filled": "True when the bar had no source bars and was forward-filled.",
    "bar_coverage": "n_source_bars over the minutes in the bar; under 0.9 its volume features are null.",
    "partial_bar": "True when the bar holds too few of its minutes; its volume features are null.",
    "lookback_gap": "True when a bar of the row's lookback is missing; no window spans the hole.",
    "macd": "EMA(12) minus EMA(26) of close.",
    "macd_signal": "EMA(9) of macd.",
    "macd_histogram": "macd minus macd_signal.",
    "bb_upper": "Bollinger upper band (SMA 20 + 2 standard deviations).",
    "bb_middle": "Bollinger middle band (SMA 20).",
    "bb_lower": "Bollinger lower band (SMA 20 - 2 standard deviations).",
    "bb_pband": "Position of close within the Bollinger bands (0 = lower, 1 = upper).",
    "bb_wband": "Bollinger band width relative to the middle band.",
    "log_return_1": "log(close / previous close).",
    "pct_return_1": "close / previous close - 1.",
    "log_return_1d": "log return over the last day of bars.",
    "log_volume": "log(1 + volume).",
    "vwap_14": "Volume-weighted average price over 14 bars.",
    "kmid": "(close - open) / open of the bar.",
    "klen": "(high - low) / open of the bar.",
    "kup": "Upper shadow (high - max(open, close)) / open.",
    "klow": "Lower shadow (min(open, close) - low) / open.",
    "ksft": "(2 close - high - low) / open: where the bar closed within its range.",
    "target_entry_price": "Price the forward returns are measured from (a target, never a feature).",
    "fear_greed_index": "Crypto Fear & Greed index (0..100) as known at the bar's close.",
}

_INDICATORS = {
    "rsi": "Relative strength index over {n}, in [0, 100]",
    "sma": "Simple moving average of close over {n}",
    "ema": "Exponential moving average of close, span {n}",
    "atr": "Average true range over {n} (Wilder smoothing)",
    "adx": "Average directional index over {n}",
    "di_plus": "Positive directional indicator over {n}",
    "di_minus": "Negative directional indicator over {n}",
    "mfi": "Money flow index over {n}",
    "cmf": "Chaikin money flow over {n}",
    "volume_ratio": "Volume over its mean of {n}",
    "momentum": "Close over the close {n} earlier, minus 1",
    "volatility": "Rolling standard deviation of log_return_1 over {n}",
    "parkinson_vol": "Parkinson (high-low) volatility over {n}",
    "garman_klass_vol": "Garman-Klass (OHLC) volatility over {n}",
    "roc": "Alpha158 ROC: close {n} earlier over close",
    "ma": "Alpha158 MA: mean close over {n}, over close",
    "std": "Alpha158 STD: standard deviation of close over {n}, over close",
    "rsv": "Alpha158 RSV: where close lies in the low..high range of the last {n}",
    "corr": "Alpha158 CORR: correlation of close and log volume over {n}",
    "cntp": "Alpha158 CNTP: share of up bars in the last {n}",
    "sump": "Alpha158 SUMP: gains over total absolute moves in the last {n}",
}
_INDICATOR = re.compile(rf"^({'|'.join(sorted(_INDICATORS, key=len, reverse=True))})_(\d+)(d?)$")
_TARGET = re.compile(r"^target_(return_pct|return|high|low|label|price)_(\w+)$")
_TARGETS = {
    "return": "Log return from the entry price to the close {h} later",
    "return_pct": "Percent return from the entry price to the close {h} later",
    "high": "Highest high in the {h} after entry",
    "low": "Lowest low in the {h} after entry",
    "label": "Sell/hold/buy label (-1/0/1) at +-2% over {h}",
    "price": "Close {h} after entry",
}
_HIGHER_TIMEFRAME = re.compile(r"^(\w+)_(4h|1d)$")


def describe(column: str) -> str | None:
    """A description for `column`, or None for a name no rule knows."""
    if column in NAMED:
        return NAMED[column]
    if match := _INDICATOR.match(column):
        name, n, days = match.groups()
        return _INDICATORS[name].format(n=f"{n} days" if days else f"{n} bars") + "."
    if match := _TARGET.match(column):
        kind, horizon = match.groups()
        return f"{_TARGETS[kind].format(h=horizon)}; null until that bar exists (a target, never a feature)."
    if column.endswith("_age_hours"):
        return f"Hours since the value of {column.removesuffix('_age_hours')} became available, at the bar's close."
    if column.endswith("_missing_reason"):
        return f"Why {column.removesuffix('_missing_reason')} is null (not_provided, no_data, stale), else null."
    if column.endswith("_source"):
        return f"Vendor and series that gave {column.removesuffix('_source')} (vendor:series)."
    if column in MACRO_COLUMNS or column in ONCHAIN_COLUMNS or column in MARKET_STRUCTURE_COLUMNS:
        return f"{column} as known at the bar's close (point in time, never revised later)."
    if (match := _HIGHER_TIMEFRAME.match(column)) and (base := describe(match.group(1))):
        return f"{base.rstrip('.')}, of the last {match.group(2)} bar closed by this bar's close."
    return None


def descriptions(columns: Iterable[str]) -> dict[str, str]:
    return {c: d for c in columns if (d := describe(c))}


_CONTEXT = [f"{c}{suffix}" for c in MACRO_COLUMNS for suffix in ("", "_age_hours", "_source")] + [
    f"{c}{suffix}" for c in ONCHAIN_COLUMNS for suffix in ("", "_age_hours")
] + ["fear_greed_index", "fear_greed_index_age_hours", *MARKET_STRUCTURE_COLUMNS, *REASON_COLUMNS]

_TARGET_COLUMNS = [f"target_{kind}_{h}" for h in ("1h", "24h", "3d", "5d") for kind in ("return", "return_pct")] + [
    "target_high_24h", "target_low_24h", "target_label_24h"]

# The columns each table is known to hold when it is defined (a table may grow: the store widens it).
TABLE_COLUMNS: dict[str, list[str]] = {
    "raw.coinbase_candles_1m": [*CANDLE_COLUMNS, "partition_date"],
    "processed.candles_1h": [*CANDLE_1H_COLUMNS, "partition_date"],
    "processed.candles_1d": [*CANDLE_1H_COLUMNS, "partition_date"],
    "processed.technical_features_1h": ["ts", "symbol", "close", *FEATURE_COLUMNS, *FLAG_COLUMNS, "partition_date"],
    "processed.technical_features_1d": ["ts", "symbol", "close", *FEATURE_COLUMNS, *FLAG_COLUMNS, "partition_date"],
    "processed.forward_targets_90d_1h": ["ts", "symbol", "close", "target_entry_price", "target_return_90d",
                                         "target_return_pct_90d", "target_price_90d", "target_label_90d",
                                         "partition_date"],
    "processed.forward_targets_1h": ["ts", "symbol", "close", "target_entry_price", *_TARGET_COLUMNS,
                                     "partition_date"],
    "processed.context_features_1h": ["ts", "symbol", *_CONTEXT, "partition_date"],
}


def table_columns(table: str) -> list[str]:
    """Known columns of `table`; for other tables the key columns only."""
    return TABLE_COLUMNS.get(table, ["ts", "symbol", "partition_date"])
