"""The processed layer: 1-hour candles, technical features and forward targets per day and product.

Features read the lookback they need from earlier days' 1-hour candles (declared as a partition
mapping, so the UI and automation see it); targets read the day after and materialize only once it
is complete.
"""


from datetime import timedelta

import dagster as dg
import pandas as pd

from btc_platform.defs.coinbase.assets import candles_ref, coinbase_candles_1m
from btc_platform.defs.metadata import frame_metadata
from btc_platform.defs.monitoring.assets import coinbase_candles_1m_quality, require_clean
from btc_platform.defs.partitions import (
    BACKFILL_POLICY,
    build_each_partition,
    date_window_mapping,
    day_bounds,
    daily_by_symbol,
)
from btc_platform.defs.resources import LakeResource
from btc_platform.features import compute_forward_returns, compute_technical_features, resample_ohlcv
from btc_platform.lake import PartitionRef

BAR = pd.Timedelta(hours=1)
BARS_PER_YEAR = 24 * 365
# SMA 200 needs 200 hourly bars; 10 days (240 bars) also lets the EMAs and Wilder averages settle.
LOOKBACK_DAYS = 10
TARGET_HORIZONS = {"1h": 1, "24h": 24}
LOOKAHEAD_DAYS = 1  # the 24h target of the day's last bar needs the next day's last bar

# Eager, but never past a failed blocking check upstream.
AUTOMATION = dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()


def processed_ref(dataset: str, day, symbol) -> PartitionRef:
    return PartitionRef("processed", dataset, day, symbol=symbol, interval="1h")


def _write(context, store, dataset, day, symbol, frame) -> dict:
    written = store.write(processed_ref(dataset, day, symbol), frame)
    context.log.info(f"{dataset} {symbol} {day}: {written.rows} rows written to {written.path}")
    return {**frame_metadata(frame, written.path), "bytes": written.bytes}


@dg.asset(
    group_name="processed",
    partitions_def=daily_by_symbol,
    backfill_policy=BACKFILL_POLICY,
    deps=[coinbase_candles_1m, coinbase_candles_1m_quality],
    kinds={"pandas", "parquet"},
    description="1-hour OHLCV bars resampled from the day's 1-minute candles; hours without trades are "
    "filled from the previous close with volume 0 and `is_filled` set.",
    automation_condition=AUTOMATION,
)
def candles_1h(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    store = lake.lake()

    def build(key, day, symbol):
        start, end = day_bounds(day)
        require_clean(store, candles_ref(day, symbol), key)
        # The previous day's last minute only seeds the fill of an empty first hour.
        minutes = store.read_many([candles_ref(day - timedelta(days=1), symbol), candles_ref(day, symbol)])
        bars = resample_ohlcv(minutes, "1h", pd.Timestamp(start), pd.Timestamp(end), symbol=symbol)
        return _write(context, store, "candles", day, symbol, bars)

    return build_each_partition(context, build)


@dg.asset(
    group_name="processed",
    partitions_def=daily_by_symbol,
    backfill_policy=BACKFILL_POLICY,
    deps=[dg.AssetDep("candles_1h", partition_mapping=date_window_mapping(-LOOKBACK_DAYS))],
    kinds={"pandas", "parquet"},
    description=f"Technical features on 1-hour bars (RSI 14, MACD 12/26/9, Bollinger 20/2, SMA 20/50/200, "
    f"EMA 12/26, ATR 14, 30-bar volatility), computed with {LOOKBACK_DAYS} days of lookback.",
    automation_condition=AUTOMATION,
)
def technical_features_1h(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    store = lake.lake()

    def build(key, day, symbol):
        if not store.exists(processed_ref("candles", day, symbol)):
            raise dg.Failure(f"{key}: candles_1h for {day} is missing")
        days = [day - timedelta(days=n) for n in range(LOOKBACK_DAYS, -1, -1)]
        bars = store.read_many([processed_ref("candles", d, symbol) for d in days])
        features = compute_technical_features(bars.sort_values("ts", ignore_index=True), BARS_PER_YEAR)
        return _write(context, store, "technical_features", day, symbol, _on_day(features, day))

    return build_each_partition(context, build)


def _on_day(frame: pd.DataFrame, day) -> pd.DataFrame:
    start, end = day_bounds(day)
    return frame[(frame["ts"] >= start) & (frame["ts"] < end)].reset_index(drop=True)


@dg.asset(
    group_name="processed",
    partitions_def=daily_by_symbol,
    backfill_policy=BACKFILL_POLICY,
    deps=[dg.AssetDep("candles_1h", partition_mapping=date_window_mapping(0, LOOKAHEAD_DAYS))],
    kinds={"pandas", "parquet"},
    description="Forward log returns over 1h and 24h from each bar's close (targets, never features). "
    "Day D materializes only once day D+1's bars exist.",
    automation_condition=AUTOMATION,
)
def forward_targets_1h(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    store = lake.lake()

    def build(key, day, symbol):
        following = processed_ref("candles", day + timedelta(days=LOOKAHEAD_DAYS), symbol)
        if not store.exists(following):
            raise dg.Failure(
                f"{key}: the 24h targets need candles_1h for {following.day} "
                f"({store.display_path(following)}), which does not exist yet"
            )
        bars = store.read_many([processed_ref("candles", day, symbol), following])
        targets = compute_forward_returns(bars.sort_values("ts", ignore_index=True), TARGET_HORIZONS, BAR)
        return _write(context, store, "forward_targets", day, symbol, _on_day(targets, day))

    return build_each_partition(context, build)
