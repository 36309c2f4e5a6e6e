"""Housekeeping the lake needs on GCS: staged uploads of writers that died before publishing."""

from datetime import timedelta

import dagster as dg

from btc_platform.defs.resources import LakeResource


class SweepConfig(dg.Config):
    # Younger staging objects may belong to writes still in progress.
    older_than_minutes: int = 60


@dg.op(description="Delete staging objects older than an hour (a writer that died between upload and "
       "publish leaves one; readers never see it). Nothing to do on a local lake.")
def sweep_lake_staging(context: dg.OpExecutionContext, config: SweepConfig, lake: LakeResource) -> list[str]:
    removed = lake.lake().sweep_staging(timedelta(minutes=config.older_than_minutes))
    context.log.info(f"{len(removed)} stale staging objects removed" + (f": {removed[:10]}" if removed else ""))
    return removed


@dg.job(description="Daily lake housekeeping.")
def lake_maintenance():
    sweep_lake_staging()


lake_maintenance_schedule = dg.ScheduleDefinition(job=lake_maintenance, cron_schedule="30 4 * * *",
                                                  execution_timezone="UTC",
                                                  default_status=dg.DefaultScheduleStatus.RUNNING)
