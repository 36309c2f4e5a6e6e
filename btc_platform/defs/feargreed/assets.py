"""Crypto Fear & Greed index (alternative.me, free, no key), one value per UTC day.

One request covers the run's whole window (the API counts back from today), then each day's value is
written as its own partition. A day the vendor has no value for (its history has a few gaps) is
written as an empty partition and the metadata says so: a value is never invented.
"""

from datetime import date

import dagster as dg
import pandas as pd

from btc_platform.defs.metadata import frame_metadata
from btc_platform.defs.partitions import BACKFILL_POLICY, build_each_partition, daily, partitions_in_run, run_window
from btc_platform.defs.resources import FearGreedResource, LakeResource
from btc_platform.defs.source import ingest_source, with_source
from btc_platform.defs.tracking import record_skipped, tracked
from btc_platform.lake import PartitionRef
from btc_platform.vendors import feargreed
from btc_platform.sources import with_origin
from btc_platform.vendors.errors import NoAccessError, NotEntitledError

VENDOR = "feargreed"
ENDPOINT = "fng"  # the status table's name for `GET /fng/`
DATASET = "fear_greed_index"


def fear_greed_ref(day: date) -> PartitionRef:
    return PartitionRef("raw", DATASET, day)


def value_on(frame: pd.DataFrame, day: date) -> pd.DataFrame:
    """The index dated `day` (one row, or none on the vendor's gap days)."""
    return frame[frame["ts"] == pd.Timestamp(day, tz="UTC")].reset_index(drop=True)


@dg.asset(
    group_name="ingest",
    pool="vendor_feargreed",  # one step at a time calls feargreed: the client paces at its whole limit
    partitions_def=daily,
    backfill_policy=BACKFILL_POLICY,
    output_required=False,
    kinds={"python", "parquet"},
    description="Crypto Fear & Greed index from alternative.me (`GET /fng/?limit=N`, no key): partition D "
    "holds the value dated D (published at D 00:00 UTC), 0..100 with its class name. On the vendor's "
    "gap days the partition is empty and its metadata says so; nothing is filled in.",
)
def fear_greed_index(context: dg.AssetExecutionContext, lake: LakeResource, feargreed_api: FearGreedResource):
    store, status = lake.lake(), lake.vendor_status()
    asset = context.asset_key.to_user_string()
    source = ingest_source(context, lake, feargreed_api)
    start, end = run_window(context)
    try:
        with tracked(status, VENDOR, ENDPOINT), feargreed_api.http() as http:
            frame = feargreed.fetch_history(http, start, end, partition=context.partition_key_range.start)
    except (NoAccessError, NotEntitledError) as error:
        record_skipped(context, status, VENDOR, ENDPOINT, error)
        return

    def build(key, day, _symbol):
        part = value_on(frame, day)
        written = store.write(fear_greed_ref(day), with_origin(part, source))
        status.clear_degraded(asset, key)
        meta = {**frame_metadata(part, written.path), "missing": part.empty, "source": source}
        if part.empty:
            meta["note"] = "alternative.me has no value for this day: empty partition, nothing filled in"
            context.log.warning(f"{asset} {key}: no value from the vendor (a gap in its history)")
        else:
            meta["value"] = int(part["value"].iloc[0])
            meta["classification"] = str(part["classification"].iloc[0])
        return meta

    result = build_each_partition(context, build)
    days = [day for _, day, _ in partitions_in_run(context)]
    missing = [f"{day:%Y-%m-%d}" for day in days if value_on(frame, day).empty]
    yield dg.MaterializeResult(metadata={**(result.metadata or {}), "missing_days": dg.MetadataValue.json(missing),
                                         "source": source})


def probe(resource: FearGreedResource, endpoint: str, lake: LakeResource | None = None) -> None:
    with resource.http() as http:
        feargreed.probe(http)


# The restoration sensor re-runs the degraded partitions when the endpoint answers again.
RESTORABLE = {(VENDOR, ENDPOINT): probe}
