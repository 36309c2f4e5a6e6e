"""CryptoQuant BTC on-chain metrics per UTC day: hourly where the plan allows, else the daily series.

A metric served by its daily series in place of the hourly one is a fallback: its rows say so
(`window="day"`, `is_fallback`), and the partition is recorded for the restoration sensor, which
re-runs it once the hourly window answers again.
"""

import dagster as dg

from btc_platform.defs.metadata import frame_metadata
from btc_platform.defs.partitions import BACKFILL_POLICY, build_each_partition, daily, day_bounds, run_window
from btc_platform.defs.resources import CryptoQuantResource, LakeResource
from btc_platform.defs.source import ingest_source, with_source
from btc_platform.defs.tracking import record_skipped, skip_without_credentials, tracked
from btc_platform.lake import PartitionRef
from btc_platform.sources import with_origin
from btc_platform.vendors import cryptoquant
from btc_platform.vendors.errors import NoAccessError, NotEntitledError

VENDOR = "cryptoquant"
HOURLY, DAILY = "exchange_flows_hour", "exchange_flows_day"  # probe endpoints for the two windows


def onchain_ref(day) -> PartitionRef:
    return PartitionRef("raw", "cryptoquant_onchain", day)


@dg.asset(
    group_name="ingest",
    pool="vendor_cryptoquant",  # one step at a time calls cryptoquant: the client paces at its whole limit
    partitions_def=daily,
    backfill_policy=BACKFILL_POLICY,
    output_required=False,
    kinds={"python", "parquet"},
    description="BTC on-chain metrics from CryptoQuant (exchange netflow, inflow, outflow, reserve, whale "
    "ratio, miner reserve, transactions, active addresses, MVRV), long format, hourly where the plan "
    "allows and otherwise the daily series, marked as a fallback.",
)
def cryptoquant_onchain_metrics(context: dg.AssetExecutionContext, lake: LakeResource,
                                cryptoquant_api: CryptoQuantResource):
    store, status = lake.lake(), lake.vendor_status()
    asset = context.asset_key.to_user_string()
    if skip_without_credentials(context, status, cryptoquant_api, [HOURLY, DAILY]):
        return
    source = ingest_source(context, lake, cryptoquant_api)
    start, end = run_window(context)
    try:
        with tracked(status, VENDOR, DAILY), cryptoquant_api.http() as http:
            fetched = cryptoquant.fetch_metrics(http, start, end, partition=context.partition_key_range.start)
    except (NoAccessError, NotEntitledError) as error:
        record_skipped(context, status, VENDOR, DAILY, error)
        return
    hourly_metrics = [m for m, spec in cryptoquant.METRICS.items() if "hour" in spec.windows]
    if fetched.fallbacks:
        reason = "; ".join(f"{m}: {why}" for m, why in sorted(fetched.fallbacks.items()))
        status.record(VENDOR, HOURLY, "not_entitled", reason)
    elif any(fetched.served.get(m) == "hour" for m in hourly_metrics):
        status.record(VENDOR, HOURLY, "ok")

    def build(key, day, _symbol):
        start_d, end_d = day_bounds(day)
        part = fetched.frame[(fetched.frame["ts"] >= start_d) & (fetched.frame["ts"] < end_d)].reset_index(drop=True)
        written = store.write(onchain_ref(day), with_origin(part, source))
        if fetched.fallbacks:
            status.mark_degraded(asset, key, VENDOR, HOURLY, "fallback", f"daily series served: {reason}")
        else:
            status.clear_degraded(asset, key)
        return {**frame_metadata(part, written.path),
                "served_windows": dg.MetadataValue.json(fetched.served),
                "fallback": bool(fetched.fallbacks), "source": source}

    yield with_source(build_each_partition(context, build), source)


def probe(resource: CryptoQuantResource, endpoint: str, lake: LakeResource | None = None) -> None:
    with resource.http() as http:
        cryptoquant.probe(http, endpoint)


RESTORABLE = {(VENDOR, HOURLY): probe, (VENDOR, DAILY): probe}
