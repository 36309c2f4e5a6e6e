"""FRED series with their vintages (ALFRED real-time periods), per UTC day of publication.

Partition D holds the vintage rows first published on D (`realtime_start == D`); the first partition
of the history also holds every row published before it. The union of partitions <= D is therefore
exactly what FRED showed on D, and nothing more:

- a run covering days S..E asks each series for the real-time window [S - 1 day, E] (the whole past
  when S is the first partition): FRED clips every row's period to the window, so rows already
  current before S come back starting on S - 1 and are dropped, while every row starting within S..E
  keeps its true `realtime_start`. One listing and (usually) one observations page per series, however
  long the chunk, instead of every vintage since 1776 on every run;
- `realtime_end` says when the next vintage replaced a value, which D did not know yet: a row keeps it
  only when that replacement was published by D (rows of the first partition), else it is NaT (still
  current). `as_of` on the union (latest start wins) reads the value known at any day, and
  `close_periods` rebuilds the periods as FRED showed them on the union's last day.
"""

from contextlib import contextmanager
from datetime import date, timedelta

import dagster as dg
import pandas as pd

from btc_platform.defs.metadata import frame_metadata
from btc_platform.defs.partitions import (
    BACKFILL_POLICY,
    HISTORY_START,
    build_each_partition,
    daily,
    partitions_in_run,
)
from btc_platform.defs.resources import FredResource, LakeResource
from btc_platform.defs.source import ingest_source
from btc_platform.defs.tracking import record_skipped, skip_without_credentials
from btc_platform.lake import PartitionRef
from btc_platform.sources import with_origin
from btc_platform.vendor_status import VendorStatusStore
from btc_platform.vendors import fred
from btc_platform.vendors.errors import NoAccessError, NotEntitledError, VendorError

VENDOR = "fred"
DATASET = "fred_vintages"
# Endpoint names as the status table and `fred.probe` know them, by the path an error names.
ENDPOINT_BY_PATH = {path: name for name, path in fred.ENDPOINTS.items()}


def fred_ref(day: date) -> PartitionRef:
    return PartitionRef("raw", DATASET, day)


# -- publication-day logic (pure) -------------------------------------------------------------------

def realtime_window(first_day: date, last_day: date, history_start: date = HISTORY_START) -> tuple[str, str]:
    """The real-time window to request for the partitions first_day..last_day: from the day before
    (rows current before it come back clipped to that day and are dropped), or from the beginning of
    time when the run holds the first partition, which keeps everything published before it."""
    start = fred.REALTIME_MIN if first_day <= history_start else f"{first_day - timedelta(days=1):%Y-%m-%d}"
    return start, f"{last_day:%Y-%m-%d}"


def published_on(frame: pd.DataFrame, day: date, history_start: date = HISTORY_START) -> pd.DataFrame:
    """The rows first published on `day` (on or before it for the first partition), as known on `day`:
    a `realtime_end` not reached by then (the next vintage came later) is NaT."""
    start = pd.Timestamp(day, tz="UTC")
    starts = frame["realtime_start"]
    rows = frame[starts <= start] if day <= history_start else frame[starts == start]
    rows = rows.assign(realtime_end=rows["realtime_end"].where(rows["realtime_end"] < start))
    return rows.sort_values(["series_id", "date", "realtime_start"], kind="stable").reset_index(drop=True)


def close_periods(union: pd.DataFrame) -> pd.DataFrame:
    """Partitions concatenated -> the canonical vintage frame as of their last day: each row ends the
    day before the next vintage of its observation starts; the latest vintage stays open (NaT)."""
    f = union.sort_values(["series_id", "date", "realtime_start"], kind="stable").reset_index(drop=True)
    nxt = f.groupby(["series_id", "date"], sort=False)["realtime_start"].shift(-1)
    f["realtime_end"] = (nxt - pd.Timedelta(days=1)).where(nxt.notna(), f["realtime_end"])
    return f


def rows_per_series(frame: pd.DataFrame) -> dict[str, int]:
    counts = frame["series_id"].value_counts()
    return {s: int(counts.get(s, 0)) for s in fred.SERIES}


# -- wiring -----------------------------------------------------------------------------------------

@contextmanager
def tracked_vintages(status: VendorStatusStore):
    """`tracked` for `fetch_vintages`, which calls both endpoints (vintage dates, then observations):
    a failure is recorded against the endpoint that failed (the error names its path), success
    against both."""
    try:
        yield
    except VendorError as error:
        status.record(VENDOR, endpoint_of(error), error.status, str(error))
        raise
    for endpoint in fred.ENDPOINTS:
        status.record(VENDOR, endpoint, "ok")


def endpoint_of(error: VendorError) -> str:
    return ENDPOINT_BY_PATH.get(error.endpoint, "observations")


@dg.asset(
    group_name="ingest",
    pool="vendor_fred",  # one step at a time calls fred: the client paces at its whole limit
    partitions_def=daily,
    backfill_policy=BACKFILL_POLICY,
    output_required=False,
    kinds={"python", "parquet"},
    description="The 12 FRED macro series (rates, spreads, VIX, S&P 500, dollar, oil, CPI, unemployment, "
    "fed funds, M2, GDP) with every vintage, from ALFRED (`/fred/series/vintagedates` and "
    "`/fred/series/observations` with a real-time window, output_type=1). Partition D holds the rows "
    "first published on D (`realtime_start == D`), the first partition everything published before it, "
    "so the partitions up to D are exactly what was known on D; `realtime_end` is NaT unless the next "
    "vintage was already out by D. No key, or no access: skipped, and the vendor status says so.",
)
def fred_vintages(context: dg.AssetExecutionContext, lake: LakeResource, fred_api: FredResource):
    store, status = lake.lake(), lake.vendor_status()
    asset = context.asset_key.to_user_string()
    if skip_without_credentials(context, status, fred_api, list(fred.ENDPOINTS)):
        return
    source = ingest_source(context, lake, fred_api)
    days = [day for _, day, _ in partitions_in_run(context)]
    rt_start, rt_end = realtime_window(min(days), max(days))
    requests = 0
    try:
        frames = []
        with tracked_vintages(status), fred_api.http() as http:
            for series_id in fred.SERIES:
                got = fred.fetch_vintages(http, series_id, realtime_start=rt_start, realtime_end=rt_end,
                                          partition=context.partition_key_range.start, api_key=fred_api.api_key)
                frames.append(got.frame)
                requests += got.requests
    except (NoAccessError, NotEntitledError) as error:
        record_skipped(context, status, VENDOR, endpoint_of(error), error)
        return
    frame = pd.concat(frames, ignore_index=True)
    context.log.info(f"FRED: {len(frame)} rows for real-time window {rt_start}..{rt_end}, {requests} requests")

    def build(key, day, _symbol):
        part = published_on(frame, day)
        written = store.write(fred_ref(day), with_origin(part, source))
        status.clear_degraded(asset, key)
        counts = rows_per_series(part)
        return {**frame_metadata(part, written.path),
                "series_count": sum(1 for n in counts.values() if n),
                "rows_per_series": dg.MetadataValue.json(counts), "source": source}

    result = build_each_partition(context, build)
    yield dg.MaterializeResult(metadata={**(result.metadata or {}),
                                         "realtime_window": f"{rt_start}..{rt_end}",
                                         "requests": requests, "source": source})


def probe(resource: FredResource, endpoint: str, lake: LakeResource | None = None) -> None:
    with resource.http() as http:
        fred.probe(http, endpoint, resource.require_key())


# The restoration sensor re-runs the degraded partitions when the endpoint answers again.
RESTORABLE = {(VENDOR, "observations"): probe, (VENDOR, "vintagedates"): probe}
