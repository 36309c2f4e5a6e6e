"""The btc_platform code location: every area's definitions, merged, with resources from the environment.

Adding a vendor or an area is one import and one line in the list below.
"""

import os

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


def executor() -> dg.ExecutorDefinition:
    """Steps run inside the run's process by default: a process per step re-imported this code location
    (6 s quiet, 14-16 s on a loaded 2-core machine, before each step). BTC_PLATFORM_EXECUTOR=multiprocess
    runs steps in parallel processes, forked from a server that imports the code once per run."""
    if os.environ.get("BTC_PLATFORM_EXECUTOR", "in_process") == "in_process":
        return dg.in_process_executor
    return dg.multiprocess_executor.configured(
        {"start_method": {"forkserver": {"preload_modules": ["btc_platform.definitions"]}}}, name="multiprocess_forkserver")


defs = dg.Definitions.merge(*(area.defs for area in AREAS),
                            dg.Definitions(resources=build_resources(), sensors=[AUTOMATION_SENSOR, LOOKAHEAD_SENSOR],
                                           executor=executor()))
