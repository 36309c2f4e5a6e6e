"""Recording vendor calls' outcomes from assets: status per endpoint, and degraded partitions."""

from contextlib import contextmanager

import dagster as dg

from btc_platform.vendor_status import VendorStatusStore
from btc_platform.vendors.errors import VendorError


@contextmanager
def tracked(store: VendorStatusStore, vendor: str, endpoint: str):
    """Record the outcome of the vendor calls inside: `ok`, or the error's status and message."""
    try:
        yield
    except VendorError as error:
        store.record(vendor, endpoint, error.status, str(error))
        raise
    store.record(vendor, endpoint, "ok")


def skip_without_credentials(context: dg.AssetExecutionContext, store: VendorStatusStore, resource,
                             endpoints: list[str]) -> bool:
    """True (and the vendor's status says so) when the vendor's key is not configured.

    The asset then yields nothing: it is skipped cleanly and the rest of the graph runs. The
    partitions are recorded as skipped, so the restoration sensor can fill them once a key is set.
    """
    if resource.api_key:
        return False
    message = f"{resource.vendor}: no key configured; skipped"
    for endpoint in endpoints:
        store.record(resource.vendor, endpoint, "no_credentials", message)
        for key in context.partition_keys:
            store.mark_degraded(context.asset_key.to_user_string(), key, resource.vendor, endpoint, "skipped", message)
    context.log.warning(message)
    return True


def record_skipped(context: dg.AssetExecutionContext, store: VendorStatusStore, vendor: str, endpoint: str,
                   error: VendorError) -> None:
    """The vendor refused (no access, not in the plan): every partition of the run is recorded as
    skipped, so the restoration sensor re-runs them once the endpoint answers again."""
    asset = context.asset_key.to_user_string()
    for key in context.partition_keys:
        store.mark_degraded(asset, key, vendor, endpoint, "skipped", str(error))
    context.log.warning(f"{asset} skipped: {error}")
