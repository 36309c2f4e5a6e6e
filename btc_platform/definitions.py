"""The btc_platform code location: every area's definitions, merged, with resources from the environment."""

import dagster as dg

from btc_platform.defs import coinbase, datasets, features, monitoring, training, warehouse
from btc_platform.defs.resources import build_resources

defs = dg.Definitions.merge(
    coinbase.defs,
    monitoring.defs,
    features.defs,
    warehouse.defs,
    datasets.defs,
    training.defs,
    dg.Definitions(resources=build_resources()),
)
