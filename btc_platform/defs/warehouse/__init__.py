import dagster as dg

from btc_platform.defs.warehouse.dbt import monitoring_views, training_marts
from btc_platform.defs.warehouse.loads import warehouse_loads
from btc_platform.defs.warehouse.monitoring_loads import monitoring_loads

defs = dg.Definitions(assets=[*warehouse_loads, *monitoring_loads, training_marts, monitoring_views])
