"""CoinAPI: spot and perpetual hourly OHLCV and perpetual funding rates, per UTC day and product.

One request sequence covers the run's whole window (a backfill chunk), then rows are split into
daily partitions. Spot falls back to Coinbase's own 1-hour candles when CoinAPI cannot serve it;
perpetuals and funding have no fallback and are skipped, which the vendor status records.

OHLCV days get the checks Coinbase's candles get (`monitoring.quality.summarize_candles`): a day with
OHLC violations (high < low, prices <= 0, negative volume) or adjusted coverage under `MIN_COVERAGE`
(absent hours count as missing: the listed instruments trade every hour) is refused with a message
naming it, and nothing is written for it; a written day has its summary beside it (`_quality.json`).
"""


import dagster as dg
import pandas as pd

from btc_platform.monitoring.quality import blocking_failures, summarize_candles

from btc_platform.defs.features.assets import processed_ref
from btc_platform.defs.metadata import frame_metadata
from btc_platform.defs.partitions import (
    BACKFILL_POLICY,
    build_each_partition,
    day_bounds,
    daily_by_symbol,
    partitions_in_run,
    run_window,
)
from btc_platform.defs.resources import CoinAPIResource, LakeResource
from btc_platform.defs.source import ingest_source, with_source
from btc_platform.defs.tracking import record_skipped, skip_without_credentials, tracked
from btc_platform.lake import PartitionRef
from btc_platform.sources import with_origin
from btc_platform.vendors import coinapi
from btc_platform.vendors.errors import NoAccessError, NoCredentialsError, NotEntitledError

VENDOR = "coinapi"
SUMMARY_FILE = "_quality.json"
MIN_COVERAGE = 0.9  # as for Coinbase's candles
# Outcomes that a fallback may cover (or that skip a dataset): access, not transient failures.
UNAVAILABLE = (NoCredentialsError, NoAccessError, NotEntitledError)


def perp_symbol_id(product: str) -> str:
    base = product.split("-")[0]
    return coinapi.PERP_SYMBOLS[f"{base}-USDT-PERP"]


def coinapi_ref(dataset: str, day, symbol) -> PartitionRef:
    return PartitionRef("raw", dataset, day, symbol=symbol, interval="1h")


def _on_day(frame: pd.DataFrame, day) -> pd.DataFrame:
    start, end = day_bounds(day)
    return frame[(frame["ts"] >= start) & (frame["ts"] < end)].reset_index(drop=True)


def day_quality(part: pd.DataFrame, day, key: str, dataset: str, symbol_id: str,
                coverage: bool = True) -> dict:
    """The quality summary of one day of hourly OHLCV bars, `blocking_failures` included."""
    start, end = day_bounds(day)
    summary = summarize_candles(part, start=pd.Timestamp(start), end=pd.Timestamp(end), interval=pd.Timedelta("1h"),
                                dataset=dataset, partition=key)
    listed = day >= coinapi.SYMBOL_START_DATES.get(symbol_id, day)
    summary["listed"] = listed
    summary["blocking_failures"] = blocking_failures(summary, min_coverage=MIN_COVERAGE if coverage else None)
    return summary


def _write_days(context, store, dataset: str, frame: pd.DataFrame, extra=None, symbol_id=None,
                source: str | None = None) -> dg.MaterializeResult:
    def build(key, day, symbol):
        part = _on_day(frame, day)
        ref = coinapi_ref(dataset, day, symbol)
        summary = None
        if "open" in part:  # candle-shaped: the same sanity checks as Coinbase's candles
            summary = day_quality(part, day, key, dataset, symbol_id(symbol) if symbol_id else "")
            if summary["blocking_failures"]:
                raise dg.Failure(f"{dataset} {key} (vendor {VENDOR}): refused, nothing written: "
                                 + "; ".join(summary["blocking_failures"]))
        written = store.write(ref, with_origin(part, source))
        meta = {**frame_metadata(part, written.path), **(extra or {}), "source": source}
        if summary is not None:
            store.write_json(ref, SUMMARY_FILE, summary)
            meta.update(coverage=float(summary["coverage"]), missing_bars=summary["missing_bars"],
                        ohlc_violations=summary["ohlc_violations"])
        return meta

    return with_source(build_each_partition(context, build), source)


def _fetch(context, coinapi_api, store, endpoint: str, fetch):
    """Run `fetch(http, symbol, start, end, partition)` over the run's window, status recorded."""
    (_, _, symbol), start_end = partitions_in_run(context)[0], run_window(context)
    with tracked(store, VENDOR, endpoint), coinapi_api.http() as http:
        return fetch(http, symbol, *start_end, context.partition_key_range.start)


@dg.asset(
    group_name="ingest",
    pool="vendor_coinapi",  # one step at a time calls coinapi: the client paces at its whole limit
    partitions_def=daily_by_symbol,
    backfill_policy=BACKFILL_POLICY,
    deps=["candles_1h"],  # the fallback source
    kinds={"python", "parquet"},
    description="Hourly spot OHLCV from CoinAPI (`/v1/ohlcv/{symbol_id}/history`, COINBASE_SPOT_*). "
    "When CoinAPI cannot serve it (no key, no access, not in the plan) the partition is served from "
    "Coinbase's own 1-hour candles, every row saying so in `source` (`fallback:coinbase`).",
)
def coinapi_spot_ohlcv_1h(context: dg.AssetExecutionContext, lake: LakeResource,
                          coinapi_api: CoinAPIResource) -> dg.MaterializeResult:
    store, status = lake.lake(), lake.vendor_status()
    asset = context.asset_key.to_user_string()
    source = ingest_source(context, lake, coinapi_api)
    try:
        fetched = _fetch(context, coinapi_api, status, "ohlcv_history", lambda http, symbol, start, end, key:
                         coinapi.fetch_ohlcv(http, coinapi.SPOT_SYMBOLS[symbol], start, end, symbol=symbol,
                                             partition=key))
    except UNAVAILABLE as error:  # `tracked` has recorded the status (no_credentials included)
        reason = str(error)
        context.log.warning(f"CoinAPI spot unavailable, serving Coinbase candles: {reason}")

        def build(key, day, symbol):
            candles = store.read(processed_ref("candles", day, symbol))
            if candles is None:
                raise dg.Failure(f"{key}: CoinAPI spot unavailable ({reason}) and no candles_1h to fall back on")
            part = fallback_frame(candles, symbol)
            # Coverage: hours without trades are left out of the fallback on purpose.
            summary = day_quality(part, day, key, "coinapi_spot_ohlcv", coinapi.SPOT_SYMBOLS[symbol], coverage=False)
            if summary["blocking_failures"]:
                raise dg.Failure(f"coinapi_spot_ohlcv {key} (fallback:coinbase): refused, nothing written: "
                                 + "; ".join(summary["blocking_failures"]))
            written = store.write(coinapi_ref("coinapi_spot_ohlcv", day, symbol), with_origin(part, source))
            status.mark_degraded(asset, key, VENDOR, "ohlcv_history", "fallback", reason)
            return {**frame_metadata(part, written.path), "served_by": "fallback:coinbase", "fallback_reason": reason,
                    "source": source}

        return with_source(build_each_partition(context, build), source)
    for key, _, _ in partitions_in_run(context):
        status.clear_degraded(asset, key)
    return _write_days(context, store, "coinapi_spot_ohlcv", fetched.frame,
                       {"served_by": "coinapi", "no_data": fetched.no_data}, coinapi.SPOT_SYMBOLS.get, source)


def fallback_frame(candles: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """Coinbase 1-hour candles in CoinAPI's OHLCV shape; filled hours (no trades) are left out."""
    real = candles[~candles["is_filled"]]
    return pd.DataFrame({
        "ts": real["ts"], "symbol": symbol, "symbol_id": coinapi.SPOT_SYMBOLS[symbol],
        "open": real["open"], "high": real["high"], "low": real["low"], "close": real["close"],
        "volume": real["volume"], "trades_count": pd.array([pd.NA] * len(real), dtype="Int64"),
        "source": "fallback:coinbase", "ingested_at": pd.Timestamp.now(tz="UTC"),
    }).reset_index(drop=True)


def _skippable(context, lake, coinapi_api, endpoint, dataset, fetch, symbol_id=None):
    """Perpetuals and funding: no fallback. Unavailable -> skipped (no materialization) and recorded."""
    status, asset = lake.vendor_status(), context.asset_key.to_user_string()
    if skip_without_credentials(context, status, coinapi_api, [endpoint]):
        return
    source = ingest_source(context, lake, coinapi_api)
    try:
        fetched = _fetch(context, coinapi_api, status, endpoint, fetch)
    except (NoAccessError, NotEntitledError) as error:
        record_skipped(context, status, VENDOR, endpoint, error)
        return
    for key in context.partition_keys:
        status.clear_degraded(asset, key)
    yield _write_days(context, lake.lake(), dataset, fetched.frame, {"no_data": fetched.no_data}, symbol_id, source)


@dg.asset(
    group_name="ingest",
    pool="vendor_coinapi",  # one step at a time calls coinapi: the client paces at its whole limit
    partitions_def=daily_by_symbol,
    backfill_policy=BACKFILL_POLICY,
    output_required=False,
    kinds={"python", "parquet"},
    description="Hourly perpetual-swap OHLCV from CoinAPI (BINANCEFTS_PERP_*_USDT).",
)
def coinapi_perp_ohlcv_1h(context: dg.AssetExecutionContext, lake: LakeResource, coinapi_api: CoinAPIResource):
    yield from _skippable(context, lake, coinapi_api, "ohlcv_history", "coinapi_perp_ohlcv",
                          lambda http, symbol, start, end, key: coinapi.fetch_ohlcv(
                              http, perp_symbol_id(symbol), start, end, symbol=symbol, partition=key),
                          perp_symbol_id)


@dg.asset(
    group_name="ingest",
    pool="vendor_coinapi",  # one step at a time calls coinapi: the client paces at its whole limit
    partitions_def=daily_by_symbol,
    backfill_policy=BACKFILL_POLICY,
    output_required=False,
    kinds={"python", "parquet"},
    description="8-hourly perpetual funding rates from CoinAPI's metrics API. A plan without it answers "
    "404: the partitions are skipped with status `not_entitled`, and nothing else stops.",
)
def coinapi_funding_rates(context: dg.AssetExecutionContext, lake: LakeResource, coinapi_api: CoinAPIResource):
    yield from _skippable(context, lake, coinapi_api, "funding_rate", "coinapi_funding_rates",
                          lambda http, symbol, start, end, key: coinapi.fetch_funding_rates(
                              http, perp_symbol_id(symbol), start, end, symbol=symbol, partition=key))


def probe(resource: CoinAPIResource, endpoint: str, lake: LakeResource | None = None,
          symbol_id: str | None = None) -> None:
    """`symbol_id`: the instrument that was refused (the restoration sensor passes it); else BTC's."""
    with resource.http() as http:
        coinapi.probe(http, endpoint, symbol_id=symbol_id)


# The restoration sensor re-runs these assets' degraded partitions when the endpoint answers again.
RESTORABLE = {("coinapi", "ohlcv_history"): probe, ("coinapi", "funding_rate"): probe}
