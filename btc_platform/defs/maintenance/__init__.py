import dagster as dg

from btc_platform.defs.maintenance.jobs import lake_maintenance, lake_maintenance_schedule

defs = dg.Definitions(jobs=[lake_maintenance], schedules=[lake_maintenance_schedule])
