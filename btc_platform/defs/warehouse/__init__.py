import dagster as dg

from btc_platform.defs.warehouse.dbt import dbt_models
from btc_platform.defs.warehouse.loads import warehouse_loads

defs = dg.Definitions(assets=[*warehouse_loads, dbt_models])
