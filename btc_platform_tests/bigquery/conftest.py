"""BigQuery tests: a store on fresh emulator datasets, and frames shaped like the load assets' partitions."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from btc_platform.config import Settings
from btc_platform.defs.resources import warehouse_resource


@pytest.fixture
def bq_resource(bigquery_env):
    """The warehouse resource `build_resources` makes from the environment (BigQuery on the emulator)."""
    return warehouse_resource(Settings()).process_config_and_initialize()  # EnvVar fields resolved


@pytest.fixture
def bq_store(bq_resource):
    return bq_resource.store()


def hourly(day: date, symbol: str, close: float, hours: int = 4, **extra) -> pd.DataFrame:
    """A small hourly partition: tz-aware ts, float, int, bool and string columns, a null string."""
    ts = pd.date_range(pd.Timestamp(day, tz="UTC"), periods=hours, freq="1h")
    frame = pd.DataFrame({"ts": ts, "symbol": symbol, "close": close + np.arange(hours, dtype=float),
                          "n_source_bars": np.full(hours, 60, dtype="int64"), "is_filled": False,
                          "source": "coinbase", "note": None})
    return frame.assign(**extra)
