"""Housekeeping the lake needs: what writers that died before publishing left (GCS or a local folder)."""

from datetime import timedelta

import dagster as dg

from btc_platform.defs.resources import LakeResource
from btc_platform.storage import sweep_local_leftovers


class SweepConfig(dg.Config):
    # Younger leftovers may belong to writes still in progress.
    older_than_minutes: int = 60


@dg.op(description="Delete what writers killed between writing and publishing left, once older than an hour: "
       "staging objects on GCS, temp files (`.tmp`) in a local lake. Readers never see them.")
def sweep_lake_staging(context: dg.OpExecutionContext, config: SweepConfig, lake: LakeResource) -> list[str]:
    older_than = timedelta(minutes=config.older_than_minutes)
    store = lake.lake()
    removed = store.sweep_staging(older_than)
    if store.is_local:
        removed += sweep_local_leftovers(store.root, older_than)
    context.log.info(f"{len(removed)} stale staging objects and temp files removed"
                     + (f": {removed[:10]}" if removed else ""))
    return removed


@dg.job(description="Daily lake housekeeping.")
def lake_maintenance():
    sweep_lake_staging()


lake_maintenance_schedule = dg.ScheduleDefinition(job=lake_maintenance, cron_schedule="30 4 * * *",
                                                  execution_timezone="UTC",
                                                  default_status=dg.DefaultScheduleStatus.RUNNING)
