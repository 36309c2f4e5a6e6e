import dagster as dg

from btc_platform.defs.warehouse.dbt import dbt_models
from btc_platform.defs.warehouse.loads import warehouse_loads
from btc_platform.defs.warehouse.monitoring_loads import monitoring_loads

defs = dg.Definitions(assets=[*warehouse_loads, *monitoring_loads, dbt_models])
