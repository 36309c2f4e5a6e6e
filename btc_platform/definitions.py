"""The btc_platform code location: every area's definitions, merged, with resources from the environment.

Adding a vendor or an area is one import and one line in the list below.
"""

import dagster as dg

from btc_platform.defs import (
    alphavantage,
    coinapi,
    coinbase,
    cryptoquant,
    datasets,
    evaluation,
    feargreed,
    features,
    fred,
    maintenance,
    monitoring,
    training,
    vendor_status,
    warehouse,
)
from btc_platform.defs.automation import AUTOMATION_SENSOR, LOOKAHEAD_SENSOR
from btc_platform.defs.resources import build_resources

AREAS = [coinbase, coinapi, cryptoquant, fred, alphavantage, feargreed, vendor_status, monitoring, features,
         warehouse, datasets, training, evaluation, maintenance]

defs = dg.Definitions.merge(*(area.defs for area in AREAS),
                            dg.Definitions(resources=build_resources(), sensors=[AUTOMATION_SENSOR, LOOKAHEAD_SENSOR]))
