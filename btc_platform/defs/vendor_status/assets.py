"""The vendor status table: one row per vendor endpoint, and the partitions waiting on one."""

from collections import Counter

import dagster as dg

from btc_platform.defs.resources import LakeResource


@dg.asset(
    group_name="monitoring",
    kinds={"python"},
    description="Status of every vendor endpoint (ok, no_credentials, no_access, not_entitled, "
    "rate_limited, failing) with last success, last failure and its message, plus the partitions "
    "that were skipped or served by a fallback and will be re-run when access returns.",
    automation_condition=dg.AutomationCondition.on_cron("*/30 * * * *"),
)
def vendor_status(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    store = lake.vendor_status()
    endpoints = sorted(store.all(), key=lambda s: (s.vendor, s.endpoint))
    degraded = store.degraded()
    table = dg.MetadataValue.table(
        records=[dg.TableRecord({
            "vendor": s.vendor, "endpoint": s.endpoint, "status": s.status,
            "last_success": s.last_success or "", "last_failure": s.last_failure or "",
            "message": s.last_failure_message or "",
        }) for s in endpoints],
        schema=dg.TableSchema(columns=[dg.TableColumn(c, "string") for c in
                                       ("vendor", "endpoint", "status", "last_success", "last_failure", "message")]),
    )
    waiting = Counter(f"{d.asset} ({d.how}: {d.vendor} {d.endpoint})" for d in degraded)
    not_ok = [f"{s.vendor} {s.endpoint}: {s.status}" for s in endpoints if s.status != "ok"]
    context.log.info(f"{len(endpoints)} endpoints, {len(not_ok)} not ok, {len(degraded)} degraded partitions")
    return dg.MaterializeResult(metadata={
        "endpoints": table,
        "not_ok": dg.MetadataValue.json(not_ok),
        "degraded_partitions": len(degraded),
        "degraded_by_asset": dg.MetadataValue.json(dict(waiting)),
    })
