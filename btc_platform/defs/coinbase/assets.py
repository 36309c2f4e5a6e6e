"""Coinbase Exchange 1-minute candles, one partition per UTC day and product."""


import dagster as dg

from btc_platform.defs.metadata import frame_metadata
from btc_platform.defs.partitions import BACKFILL_POLICY, build_each_partition, day_bounds, daily_by_symbol
from btc_platform.defs.resources import CoinbaseResource, LakeResource
from btc_platform.lake import PartitionRef
from btc_platform.vendors import coinbase

ZONE, DATASET = "raw", "coinbase_candles"


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
    store = lake.lake()
    with coinbase_api.http() as http:

        def build(key, day, symbol):
            start, end = day_bounds(day)
            retries_before = http.retries
            # Before a product's listing the vendor has nothing: ask anyway (one cheap request per
            # page) so the partition records an honest empty day rather than a guess.
            fetched = coinbase.fetch_candles(http, symbol, start, end, partition=key)
            written = store.write(candles_ref(day, symbol), fetched.frame)
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
            }

        return build_each_partition(context, build)
