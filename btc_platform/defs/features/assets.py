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
from btc_platform.features import compute_technical_features, resample_ohlcv
from btc_platform.features.targets import compute_targets, lookahead_partitions
from btc_platform.lake import PartitionRef

BAR = pd.Timedelta(hours=1)
BARS_PER_YEAR = 24 * 365
# SMA 200 needs 200 hourly bars; 10 days (240 bars) also lets the EMAs and Wilder averages settle.
LOOKBACK_DAYS = 10
SHORT_HORIZONS = {h: pd.Timedelta(h) for h in ("1h", "24h", "3d", "5d")}
LONG_HORIZONS = {"90d": pd.Timedelta(days=90)}
# Days after D that must exist before D's short targets can be computed (5d of the day's last bar).
LOOKAHEAD_DAYS = lookahead_partitions(SHORT_HORIZONS, BAR)

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


def forward_targets_asset(name: str, horizons: dict[str, pd.Timedelta], *, label_horizon: str,
                          price_horizons: tuple[str, ...] = ()) -> dg.AssetsDefinition:
    """Targets of each 1-hour bar over `horizons`; day D waits for the days its horizons reach."""
    lookahead_days = lookahead_partitions(horizons, BAR)
    names = ", ".join(horizons)

    @dg.asset(
        name=name,
        group_name="processed",
        partitions_def=daily_by_symbol,
        backfill_policy=BACKFILL_POLICY,
        deps=[dg.AssetDep("candles_1h", partition_mapping=date_window_mapping(0, lookahead_days))],
        kinds={"pandas", "parquet"},
        description=f"Forward targets of each 1-hour bar over {names} (targets, never features): log and "
        f"percent returns from the bar's close, {'the price, ' if price_horizons else ''}and a sell/hold/buy "
        f"label at +-2% over {label_horizon}. Day D materializes once day D+{lookahead_days} exists; a "
        "target across an outage is null, never measured from a wrong bar.",
        automation_condition=AUTOMATION,
    )
    def _targets(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        store = lake.lake()

        def build(key, day, symbol):
            future = [processed_ref("candles", day + timedelta(days=n), symbol) for n in range(lookahead_days + 1)]
            if not store.exists(future[-1]):
                raise dg.Failure(
                    f"{key}: the {names} targets need candles_1h through {future[-1].day} "
                    f"({store.display_path(future[-1])}), which does not exist yet"
                )
            bars = store.read_many(future).sort_values("ts", ignore_index=True)
            targets = compute_targets(bars, bar=BAR, horizons=horizons, label_horizon=label_horizon,
                                      price_horizons=price_horizons)
            return _write(context, store, name.removesuffix("_1h"), day, symbol, _on_day(targets, day))

        return build_each_partition(context, build)

    return _targets


# Short horizons feed the hourly training table; the 90-day horizon waits 90 days, so it has its own asset.
forward_targets_1h = forward_targets_asset("forward_targets_1h", SHORT_HORIZONS, label_horizon="24h")
forward_targets_90d_1h = forward_targets_asset("forward_targets_90d_1h", LONG_HORIZONS, label_horizon="90d",
                                               price_horizons=("90d",))
