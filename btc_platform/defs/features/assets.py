"""The processed layer: candles per timeframe (5m..1d), technical features per timeframe, 1-hour
rows with the last closed 4h/1d features, and forward targets, per UTC day and product.

Every day depends on the same day upstream, so a backfill of N days plans N days downstream. Features
read the lookback they need from earlier days' candles in the lake (a missing day is a gap, flagged);
targets read the days they look ahead to, and their automation waits until those exist
(defs/automation.py `LookAhead`).
"""


import math
import os
from datetime import date, timedelta

import dagster as dg
import pandas as pd

from btc_platform.defs.automation import (
    AUTOMATION,
    LONG_LOOKBACK_DAYS,
    SHORT_LOOKBACK_DAYS,
    eager_once_future_exists,
)
from btc_platform.defs.coinbase.assets import candles_ref, coinbase_candles_1m
from btc_platform.defs.metadata import frame_metadata
from btc_platform.defs.monitoring.assets import coinbase_candles_1m_quality, require_clean
from btc_platform.defs.partitions import (
    BACKFILL_POLICY,
    HISTORY_START,
    build_each_partition,
    day_bounds,
    daily_by_symbol,
    partitions_in_run,
)
from btc_platform.defs.resources import LakeResource
from btc_platform.features import resample_ohlcv
from btc_platform.features.grid import MIN_BAR_COVERAGE, technical_features_on_grid
from btc_platform.features.targets import compute_targets, lookahead_partitions
from btc_platform.features.technical import FEATURE_COLUMNS, bars_per_day, lookback_bars
from btc_platform.features.timeframes import TIMEFRAMES as TIMEFRAME_SPECS
from btc_platform.features.timeframes import join_higher_timeframes
from btc_platform.lake import PartitionRef
from btc_platform.vendors.coinbase import PRODUCT_START_DATES

BAR = pd.Timedelta(hours=1)
TIMEFRAMES = ("5m", "15m", "1h", "4h", "1d")
SHORT_HORIZONS = {h: pd.Timedelta(h) for h in ("1h", "24h", "3d", "5d")}
LONG_HORIZONS = {"90d": pd.Timedelta(days=90)}
# Where a target's return starts: the decision bar's close ("close_t"), or the next bar's close
# ("close_t+1", e.g. to allow for execution delay). A deployment setting: it moves the look-ahead.
TARGET_ENTRY = os.environ.get("BTC_PLATFORM_TARGET_ENTRY", "close_t")
# Days after D that must exist before D's short targets can be computed (5d of the day's last bar).
LOOKAHEAD_DAYS = lookahead_partitions(SHORT_HORIZONS, BAR, entry=TARGET_ENTRY)
# Higher-timeframe columns carried on each 1-hour row (from the last 4h and 1d bars already closed).
MTF_COLUMNS = ["kmid", "rsi_14", "macd_histogram", "atr_14", "adx_14", "volatility_30", "momentum_5", "ma_20", "std_20"]



def processed_ref(dataset: str, day, symbol, interval: str = "1h") -> PartitionRef:
    return PartitionRef("processed", dataset, day, symbol=symbol, interval=interval)


def _write(context, store, dataset, day, symbol, frame, interval: str = "1h") -> dict:
    written = store.write(processed_ref(dataset, day, symbol, interval), frame)
    context.log.info(f"{dataset} {interval} {symbol} {day}: {written.rows} rows written to {written.path}")
    return {**frame_metadata(frame, written.path), "bytes": written.bytes}


def lookback_days(timeframe: str) -> int:
    """Whole days of bars before D that the features of day D need to equal a full-history computation."""
    return math.ceil(lookback_bars(timeframe) / bars_per_day(timeframe))


def candles_asset(timeframe: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"candles_{timeframe}",
        group_name="processed",
        partitions_def=daily_by_symbol,
        backfill_policy=BACKFILL_POLICY,
        deps=[coinbase_candles_1m, coinbase_candles_1m_quality],
        kinds={"pandas", "parquet"},
        description=f"{timeframe} OHLCV bars resampled from the day's 1-minute candles, labelled by open time, "
        "never using a later minute; bars without trades are filled from the previous close with volume 0 "
        "and `is_filled` set.",
        automation_condition=AUTOMATION,
    )
    def _candles(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        store = lake.lake()

        def build(key, day, symbol):
            start, end = day_bounds(day)
            today = require_clean(store, candles_ref(day, symbol), key)  # the very rows the summary checked
            # The previous day's last minute only seeds the fill of an empty first bar.
            before = store.read(candles_ref(day - timedelta(days=1), symbol))
            minutes = pd.concat([f for f in (before, today) if f is not None and len(f)] or [today], ignore_index=True)
            bars = resample_ohlcv(minutes, TIMEFRAME_SPECS[timeframe].rule, pd.Timestamp(start), pd.Timestamp(end),
                                  symbol=symbol)
            return _write(context, store, "candles", day, symbol, bars, timeframe)

        return build_each_partition(context, build)

    return _candles


class TechnicalFeaturesConfig(dg.Config):
    # A bar built from fewer of its minutes than this gets its volume features null (partial_bar).
    min_bar_coverage: float = MIN_BAR_COVERAGE


def by_symbol(targets: list[tuple[str, date, str | None]]) -> dict[str | None, list[tuple[str, date, str | None]]]:
    """The run's partitions per product (a run may hold several products' days), oldest first."""
    out: dict[str | None, list] = {}
    for target in targets:
        out.setdefault(target[2], []).append(target)
    return out


def day_ranges(days: list[date]) -> str:
    """'2020-02-19, 2020-03-01..2020-03-04': a list of days, consecutive ones as a range."""
    runs: list[list[date]] = []
    for d in sorted(days):
        if runs and d - runs[-1][-1] == timedelta(days=1):
            runs[-1].append(d)
        else:
            runs.append([d])
    return ", ".join(f"{r[0]}" if len(r) == 1 else f"{r[0]}..{r[-1]}" for r in runs)


def technical_features_asset(timeframe: str) -> dg.AssetsDefinition:
    days_back = lookback_days(timeframe)

    @dg.asset(
        name=f"technical_features_{timeframe}",
        group_name="processed",
        partitions_def=daily_by_symbol,
        backfill_policy=BACKFILL_POLICY,
        deps=[f"candles_{timeframe}"],  # the lookback is read from the lake, not a dependency
        kinds={"pandas", "parquet"},
        description=f"{len(FEATURE_COLUMNS)} technical features on {timeframe} bars (equal to `ta` where it has "
        "them; returns, realized volatility, volume, Alpha158 shapes), from "
        f"{days_back} days of lookback: enough for a day to equal its full-history computation. Computed on "
        "the full bar grid: a missing day is a hole no window spans, and rows whose lookback holds one are "
        "flagged `lookback_gap`; a bar with too few of its minutes has its volume features null (`partial_bar`).",
        automation_condition=AUTOMATION,
    )
    def _features(context: dg.AssetExecutionContext, config: TechnicalFeaturesConfig,
                  lake: LakeResource) -> dg.MaterializeResult:
        store = lake.lake()
        computed = {}
        # One read and one computation per product for the whole run (a backfill chunk), then one
        # write per day.
        for symbol, targets in by_symbol(partitions_in_run(context)).items():
            first, last = targets[0][1], targets[-1][1]
            # Before the product's listing there is nothing to miss.
            since = max(first - timedelta(days=days_back), PRODUCT_START_DATES.get(symbol, HISTORY_START))
            frames = {since + timedelta(days=n): store.read(processed_ref("candles", since + timedelta(days=n),
                                                                          symbol, timeframe))
                      for n in range((last - since).days + 1)}
            absent = [d for d, f in frames.items() if f is None]
            present = [f for f in frames.values() if f is not None and len(f)]
            if not present:
                raise dg.Failure(f"{context.partition_key_range.start}: no candles_{timeframe} of {symbol} "
                                 f"for {since}..{last}")
            bars = pd.concat(present, ignore_index=True)
            features = technical_features_on_grid(bars, timeframe, day_bounds(since)[0], day_bounds(last)[1],
                                                  min_coverage=config.min_bar_coverage)
            computed[symbol] = (features, absent)

        def build(key, day, symbol):
            features, absent = computed[symbol]
            if day in absent:
                raise dg.Failure(f"{key}: candles_{timeframe} of {symbol} for {day} is missing (blocked by its "
                                 "quality check, or not built yet): that day's features cannot be computed")
            rows = _on_day(features, day)
            holes = [d for d in absent if d >= day - timedelta(days=days_back)]
            meta = _write(context, store, "technical_features", day, symbol, rows, timeframe)
            flagged = int(rows["lookback_gap"].sum())
            if holes:
                context.log.warning(f"{key}: the lookback lacks candles_{timeframe} for {day_ranges(holes)}; "
                                    f"computed with the hole as a gap, {flagged} of {len(rows)} rows flagged lookback_gap")
            # Complete: no day of the lookback (since the product's listing) is missing.
            return {**meta, "lookback_complete": not holes, "lookback_missing_days": day_ranges(holes) or "-",
                    "rows_lookback_gap": flagged, "partial_bars": int(rows["partial_bar"].sum()),
                    "min_bar_coverage": config.min_bar_coverage}

        return build_each_partition(context, build)

    return _features


candles = {tf: candles_asset(tf) for tf in TIMEFRAMES}
technical_features = {tf: technical_features_asset(tf) for tf in TIMEFRAMES}
candles_1h, technical_features_1h = candles["1h"], technical_features["1h"]


@dg.asset(
    group_name="processed",
    partitions_def=daily_by_symbol,
    backfill_policy=BACKFILL_POLICY,
    deps=["technical_features_1h", "technical_features_4h",
          "technical_features_1d"],  # the previous day's 4h and 1d bars are read from the lake
    kinds={"pandas", "parquet"},
    description="Each 1-hour row with the last 4h and 1d bars' features that had closed by the hour's close "
    f"({', '.join(MTF_COLUMNS)}, suffixed _4h and _1d); never a bar still open.",
    automation_condition=AUTOMATION,
)
def multi_timeframe_features_1h(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    store = lake.lake()

    def build(key, day, symbol):
        base = store.read(processed_ref("technical_features", day, symbol, "1h"))
        if base is None:
            raise dg.Failure(f"{key}: technical_features_1h for {day} is missing")
        # The previous day's bars cover the first hours, before any of the day's 4h or 1d bars closed.
        higher = {tf: store.read_many([processed_ref("technical_features", d, symbol, tf)
                                       for d in (day - timedelta(days=1), day)]) for tf in ("4h", "1d")}
        joined = join_higher_timeframes(base[["ts", "symbol"]], higher, MTF_COLUMNS, base_bar=BAR)
        return _write(context, store, "multi_timeframe_features", day, symbol, joined)

    return build_each_partition(context, build)


def _on_day(frame: pd.DataFrame, day) -> pd.DataFrame:
    start, end = day_bounds(day)
    return frame[(frame["ts"] >= start) & (frame["ts"] < end)].reset_index(drop=True)


def forward_targets_asset(name: str, horizons: dict[str, pd.Timedelta], *, label_horizon: str,
                          price_horizons: tuple[str, ...] = (), range_horizons: tuple[str, ...] = (),
                          entry: str = TARGET_ENTRY, lookback_days: int = SHORT_LOOKBACK_DAYS,
                          ) -> dg.AssetsDefinition:
    """Targets of each 1-hour bar over `horizons`; day D waits for the days its horizons reach."""
    lookahead_days = lookahead_partitions(horizons, BAR, entry=entry)
    automation = eager_once_future_exists("candles_1h", lookahead_days, lookback_days) & \
        dg.AutomationCondition.all_deps_blocking_checks_passed()
    names = ", ".join(horizons)

    @dg.asset(
        name=name,
        group_name="processed",
        partitions_def=daily_by_symbol,
        backfill_policy=BACKFILL_POLICY,
        deps=["candles_1h"],  # days D+1..D+look-ahead are read from the lake; automation waits for them
        kinds={"pandas", "parquet"},
        description=f"Forward targets of each 1-hour bar over {names} (targets, never features): log and "
        f"percent returns from {'the bar' if entry == 'close_t' else 'the next bar'}'s close, {'the price, ' if price_horizons else ''}and a sell/hold/buy "
        f"label at +-2% over {label_horizon}. Day D materializes once day D+{lookahead_days} exists; a "
        "target across an outage is null, never measured from a wrong bar.",
        automation_condition=automation,
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
            targets = compute_targets(bars, bar=BAR, horizons=horizons, entry=entry, label_horizon=label_horizon,
                                      price_horizons=price_horizons, range_horizons=range_horizons)
            return _write(context, store, name.removesuffix("_1h"), day, symbol, _on_day(targets, day))

        return build_each_partition(context, build)

    return _targets


# Short horizons feed the hourly training table; the 90-day horizon waits 90 days, so it has its own asset.
# The 24h high/low after entry tell whether a limit order would have filled (preference datasets).
forward_targets_1h = forward_targets_asset("forward_targets_1h", SHORT_HORIZONS, label_horizon="24h",
                                           range_horizons=("24h",))
forward_targets_90d_1h = forward_targets_asset("forward_targets_90d_1h", LONG_HORIZONS, label_horizon="90d",
                                               price_horizons=("90d",), lookback_days=LONG_LOOKBACK_DAYS)
