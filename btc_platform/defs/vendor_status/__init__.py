import dagster as dg

from btc_platform.defs.vendor_status.assets import vendor_status
from btc_platform.defs.vendor_status.sensors import (
    restore_by_day,
    restore_by_day_and_product,
    vendor_access_restored,
)

defs = dg.Definitions(
    assets=[vendor_status],
    jobs=[restore_by_day, restore_by_day_and_product],
    sensors=[vendor_access_restored],
)
