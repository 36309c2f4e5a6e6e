"""Re-run what a vendor outage left behind, as soon as the vendor answers again.

Every tick probes each endpoint that is not `ok` (or that degraded partitions wait on) with one
cheap request, for exactly what was refused: a degraded partition's probe asks for its own asset's
instrument (CoinAPI's spot and perpetual bars share `ohlcv_history`: a spot answer says nothing of a
denied perpetual). When one answers, the sensor requests runs for exactly the partitions that were
skipped or served by a fallback because of it; declarative automation refreshes downstream.
"""

import dagster as dg

from btc_platform.defs.alphavantage.assets import RESTORABLE as ALPHAVANTAGE
from btc_platform.defs.coinapi.assets import RESTORABLE as COINAPI
from btc_platform.defs.coinapi.assets import perp_symbol_id
from btc_platform.defs.coinbase.assets import RESTORABLE as COINBASE
from btc_platform.defs.cryptoquant.assets import RESTORABLE as CRYPTOQUANT
from btc_platform.defs.feargreed.assets import RESTORABLE as FEARGREED
from btc_platform.defs.fred.assets import RESTORABLE as FRED
from btc_platform.defs.partitions import daily, daily_by_symbol
from btc_platform.defs.resources import (
    AlphaVantageResource,
    CoinAPIResource,
    CoinbaseResource,
    CryptoQuantResource,
    FearGreedResource,
    FredResource,
    LakeResource,
)
from btc_platform.vendors import coinapi
from btc_platform.vendors.errors import VendorError

PROBES = {**COINBASE, **COINAPI, **CRYPTOQUANT, **FRED, **ALPHAVANTAGE, **FEARGREED}

# What a degraded partition of these assets asks its vendor for, by its product: the probe's arguments.
PROBE_TARGETS = {
    "coinapi_spot_ohlcv_1h": lambda product: {"symbol_id": coinapi.SPOT_SYMBOLS[product]},
    "coinapi_perp_ohlcv_1h": lambda product: {"symbol_id": perp_symbol_id(product)},
    "coinapi_funding_rates": lambda product: {"symbol_id": perp_symbol_id(product)},
}


def probe_target(asset: str, partition: str) -> tuple:
    """The probe arguments (sorted items) that repeat what `asset`'s `partition` asked for; () = any."""
    make = PROBE_TARGETS.get(asset)
    if make is None or "|" not in partition:
        return ()
    return tuple(sorted(make(partition.split("|", 1)[1]).items()))


# One job per partitions definition: a run re-ingests one asset's partition of either kind.
restore_by_day = dg.define_asset_job(
    "restore_vendor_partitions_by_day",
    selection=dg.AssetSelection.assets("cryptoquant_onchain_metrics", "fred_vintages", "alphavantage_daily",
                                       "fear_greed_index"),
    partitions_def=daily,
)
restore_by_day_and_product = dg.define_asset_job(
    "restore_vendor_partitions_by_day_and_product",
    selection=dg.AssetSelection.assets("coinapi_spot_ohlcv_1h", "coinapi_perp_ohlcv_1h", "coinapi_funding_rates"),
    partitions_def=daily_by_symbol,
)


def probe_endpoints(pending, resources: dict, lake, status, log) -> set[tuple]:
    """Probe each (vendor, endpoint, target); record the answer; return those that answer again."""
    restored = set()
    for vendor, endpoint, target in sorted(pending):
        probe, resource = PROBES.get((vendor, endpoint)), resources.get(vendor)
        if probe is None or resource is None:
            continue
        if hasattr(resource, "api_key") and not resource.api_key:
            continue  # still no key: nothing to ask
        what = f"{vendor} {endpoint}" + "".join(f" {v}" for _, v in target)
        try:
            probe(resource, endpoint, lake, **dict(target))
        except VendorError as error:
            status.record(vendor, endpoint, error.status, str(error))
            log.info(f"{what}: still {error.status}")
            continue
        status.record(vendor, endpoint, "ok")
        restored.add((vendor, endpoint, target))
        log.info(f"{what}: answers again")
    return restored


@dg.sensor(
    jobs=[restore_by_day, restore_by_day_and_product],
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Probes vendor endpoints that are not ok; when one answers again, re-runs exactly the "
    "partitions that were skipped or served by a fallback because of it.",
)
def vendor_access_restored(
    context: dg.SensorEvaluationContext,
    lake: LakeResource,
    coinbase_api: CoinbaseResource,
    coinapi_api: CoinAPIResource,
    cryptoquant_api: CryptoQuantResource,
    fred_api: FredResource,
    alphavantage_api: AlphaVantageResource,
    feargreed_api: FearGreedResource,
):
    status = lake.vendor_status()
    degraded = status.degraded()
    waiting = {(d.asset, d.partition): (d.vendor, d.endpoint, probe_target(d.asset, d.partition)) for d in degraded}
    pending = set(waiting.values())
    # An endpoint that is not ok with no partition waiting on it: one probe of it, with no target.
    probed = {(vendor, endpoint) for vendor, endpoint, _ in pending}
    pending |= {(s.vendor, s.endpoint, ()) for s in status.all()
                if s.status != "ok" and (s.vendor, s.endpoint) not in probed}
    if not pending:
        return dg.SkipReason("every vendor endpoint is ok and no partition waits on one")
    resources = {"coinbase": coinbase_api, "coinapi": coinapi_api, "cryptoquant": cryptoquant_api, "fred": fred_api,
                 "alphavantage": alphavantage_api, "feargreed": feargreed_api}
    restored = probe_endpoints(pending, resources, lake, status, context.log)
    requests = [
        dg.RunRequest(
            # Keyed by when the partition was degraded: a later outage of the same partition re-runs again.
            run_key=f"restore:{d.asset}:{d.partition}:{d.recorded_at}",
            job_name=(restore_by_day_and_product if "|" in d.partition else restore_by_day).name,
            asset_selection=[dg.AssetKey.from_user_string(d.asset)],
            partition_key=d.partition,
            tags={"restored_vendor": d.vendor, "restored_endpoint": d.endpoint},
        )
        for d in sorted(degraded, key=lambda d: (d.asset, d.partition))
        if waiting[(d.asset, d.partition)] in restored
    ]
    if not requests:
        return dg.SkipReason(f"{len(pending)} endpoint(s) not ok; none answers again yet")
    return dg.SensorResult(run_requests=requests)
