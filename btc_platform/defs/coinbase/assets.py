"""Coinbase Exchange 1-minute candles, one partition per UTC day and product."""


from datetime import timedelta

import dagster as dg
import pandas as pd

from btc_platform.defs.metadata import frame_metadata
from btc_platform.defs.partitions import BACKFILL_POLICY, build_each_partition, day_bounds, daily_by_symbol
from btc_platform.defs.resources import CoinbaseResource, LakeResource
from btc_platform.defs.source import ingest_source, with_source
from btc_platform.defs.tracking import tracked
from btc_platform.lake import PartitionRef
from btc_platform.monitoring.quality import combine_profiles, liquidity_profile
from btc_platform.vendors import coinbase
from btc_platform.sources import with_origin

ZONE, DATASET = "raw", "coinbase_candles"
VENDOR, ENDPOINT = "coinbase", "candles"  # as the vendor status table names it
PROFILE_DAYS = 7  # previous days whose candles make a product's liquidity profile
# CoinAPI's hourly bars of the same venue (written by defs/coinapi as coinapi_ref; not imported from
# there: defs.coinapi imports the features layer, which imports the quality asset that uses this).
SPOT_REFERENCE = ("raw", "coinapi_spot_ohlcv", "1h")


def candles_ref(day, symbol) -> PartitionRef:
    return PartitionRef(ZONE, DATASET, day, symbol=symbol, interval="1m")


@dg.asset(
    group_name="ingest",
    pool="vendor_coinbase",  # one step at a time calls coinbase: the client paces at its whole limit
    partitions_def=daily_by_symbol,
    backfill_policy=BACKFILL_POLICY,
    kinds={"python", "parquet"},
    description=(
        "Coinbase Exchange 1-minute candles (`GET /products/{id}/candles`, granularity 60), paged 300 "
        "bars a request, validated and written whole per UTC day and product. Minutes without trades "
        "are absent, as the vendor reports them."
    ),
)
def coinbase_candles_1m(
    context: dg.AssetExecutionContext, lake: LakeResource, coinbase_api: CoinbaseResource
) -> dg.MaterializeResult:
    store, status = lake.lake(), lake.vendor_status()
    source = ingest_source(context, lake, coinbase_api)
    with coinbase_api.http() as http:

        def build(key, day, symbol):
            start, end = day_bounds(day)
            retries_before = http.retries
            # Before a product's listing the vendor has nothing: ask anyway (one cheap request per
            # page) so the partition records an honest empty day rather than a guess.
            with tracked(status, VENDOR, ENDPOINT):  # the status table and the restoration sensor see it
                fetched = coinbase.fetch_candles(http, symbol, start, end, partition=key)
            written = store.write(candles_ref(day, symbol), with_origin(fetched.frame, source))
            retries = http.retries - retries_before
            context.log.info(
                f"{symbol} {day}: {fetched.pages} pages, {fetched.requests} requests "
                f"({retries} retried), {written.rows} rows written to {written.path}"
            )
            return {
                **frame_metadata(fetched.frame, written.path),
                "pages": fetched.pages,
                "requests": fetched.requests,
                "retries": retries,
                "bytes": written.bytes,
                "listed": day >= coinbase.PRODUCT_START_DATES[symbol],
                "source": source,
            }

        return with_source(build_each_partition(context, build), source)


def probe(resource: CoinbaseResource, endpoint: str = ENDPOINT, lake: LakeResource | None = None,
          product: str = "BTC-USD") -> None:
    """One request for the last closed hour of `product`; raises its VendorError. Two attempts at most:
    a sensor tick must not wait out a run's retry budget on a host that does not answer."""
    end = pd.Timestamp.now(tz="UTC").floor("h").to_pydatetime()
    start = end - timedelta(hours=1)
    with coinbase.make_http(resource.base_url, max_attempts=2, budget_s=20.0) as http:
        http.get_json(f"/products/{product}/candles",
                      {"granularity": 60, "start": start.isoformat(), "end": end.isoformat()},
                      endpoint=coinbase.ENDPOINT, partition=None)


# The restoration sensor probes it while its status is not ok (connection failures included).
RESTORABLE = {(VENDOR, ENDPOINT): probe}


def quality_evidence(store, day, symbol) -> dict:
    """What the quality summary of a day weighs its gaps with (`summarize_candles` keyword arguments):
    - `profile`: the product's liquidity over the up to `PROFILE_DAYS` previous days in the lake (the
      day's own absences must not vouch for themselves; without any, the day's own profile is used);
    - `reference`: CoinAPI's hourly COINBASE_SPOT bars of the day where ingested. Rows served from
      Coinbase's own candles (`fallback:coinbase`) are no second opinion and are left out. The asset
      graph cannot order it first (CoinAPI spot falls back on candles_1h, which needs this summary):
      a day checked before its CoinAPI bars land is checked without them."""
    profiles = []
    for k in range(1, PROFILE_DAYS + 1):
        d = day - timedelta(days=k)
        if d < coinbase.PRODUCT_START_DATES.get(symbol, d):
            break
        frame = store.read(candles_ref(d, symbol), columns=["ts", "volume"])
        if frame is not None:
            start, end = day_bounds(d)
            profiles.append(liquidity_profile(frame, start=pd.Timestamp(start), end=pd.Timestamp(end), source="history"))
    zone, dataset, interval = SPOT_REFERENCE
    spot = store.read(PartitionRef(zone, dataset, day, symbol=symbol, interval=interval))
    if spot is not None and "source" in spot:
        spot = spot[spot["source"] == "coinapi"]
    use_spot = spot is not None and len(spot) > 0
    return {"profile": combine_profiles(profiles), "reference": spot[["ts", "volume"]] if use_spot else None,
            "reference_interval": interval if use_spot else None}
