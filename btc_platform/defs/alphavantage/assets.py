"""Alpha Vantage daily market and macro series, per UTC day, within the plan's daily request budget.

One request per series answers its whole history (`full`) or its latest 100 points (`compact`), never
a date window, and the free plan allows 25 requests a day. So:

- each series' latest answer is kept in the lake (`_cache/alphavantage/<SERIES>.json`; what was loaded,
  when, and whether it reaches back to the series' start in `_status/alphavantage_loaded.json`). A run
  whose window the kept answer covers (it reaches back to the window's start and was fetched at least
  `SETTLE` after the window's end) sends no request: a backfill costs one request per series, not one
  per series and chunk;
- the other series are fitted into what is left of the day's budget by `plan_requests` (`full` on
  first load or after a long gap, `compact` later). The budget is a `RequestBudget` persisted as
  `_status/alphavantage_budget.json` (a new UTC day starts from zero), saved after every request;
- series deferred for lack of budget (or refused: not entitled, rate limited) are not fetched; their
  rows come from the kept answer where it has them, and the partitions are recorded as degraded
  ("skipped") so that the restoration sensor retries them. A throttle `Note`/`Information` is a
  rate limit (the client raises it), never data.

Endpoints (vendor status, degraded partitions, probes) are Alpha Vantage's function names.
"""

from datetime import date

import dagster as dg
import pandas as pd

from btc_platform.config import Settings
from btc_platform.defs.metadata import frame_metadata
from btc_platform.defs.partitions import BACKFILL_POLICY, build_each_partition, daily, day_bounds, run_window
from btc_platform.defs.resources import AlphaVantageResource, LakeResource
from btc_platform.defs.source import ingest_source
from btc_platform.defs.tracking import record_skipped, skip_without_credentials, tracked
from btc_platform.lake import Lake, PartitionRef
from btc_platform.sources import with_origin
from btc_platform.vendors import alphavantage
from btc_platform.vendors.alphavantage import SERIES, RequestBudget
from btc_platform.vendors.errors import (
    NoAccessError,
    NoCredentialsError,
    NotEntitledError,
    RateLimitedError,
    VendorError,
)

VENDOR = "alphavantage"
DATASET = "alphavantage_daily"
BUDGET_DOC = "_status/alphavantage_budget.json"
LOADED_DOC = "_status/alphavantage_loaded.json"
CACHE_PREFIX = "_cache/alphavantage"
# A kept answer vouches for a day only once it was fetched this long after the day's end: values
# published late (yields, commodities) are asked again while the day is recent.
SETTLE = pd.Timedelta(days=2)
# The series a probe of each function asks for (the first of that function, in priority order).
PROBE_SERIES = {spec.function: name for name, spec in reversed(SERIES.items())}
_TIME_COLUMNS = ("ts", "ingested_at")
_FLOAT_COLUMNS = ("open", "high", "low", "close", "volume", "value")


def alphavantage_ref(day: date) -> PartitionRef:
    return PartitionRef("raw", DATASET, day)


# -- budget and kept answers (pure, or lake documents only) ------------------------------------------

def load_budget(store: Lake, limit_per_day: int) -> RequestBudget:
    """Today's budget as persisted (a new UTC day starts from zero); the configured limit wins."""
    budget = RequestBudget.from_dict(store.get_document(BUDGET_DOC))
    budget.limit_per_day = limit_per_day
    return budget


def save_budget(store: Lake, budget: RequestBudget) -> None:
    budget.remaining  # noqa: B018 -- rolls a stale day over before it is written
    store.put_document(BUDGET_DOC, budget.to_dict())


def frame_to_doc(frame: pd.DataFrame) -> dict:
    """A canonical frame as a JSON document (floats exact, timestamps ISO 8601)."""
    data = {}
    for column in frame.columns:
        if column in _TIME_COLUMNS:
            data[column] = [t.isoformat() for t in frame[column]]
        else:
            data[column] = frame[column].tolist()
    return {"columns": list(frame.columns), "data": data}


def frame_from_doc(doc: dict) -> pd.DataFrame:
    frame = pd.DataFrame(doc["data"], columns=doc["columns"])
    for column in frame.columns:
        if column in _TIME_COLUMNS:
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601").astype("datetime64[ns, UTC]")
        elif column in _FLOAT_COLUMNS:
            frame[column] = frame[column].astype("float64")
        else:
            frame[column] = frame[column].astype("object")
    return frame


def covers(state: dict | None, start, end, settle: pd.Timedelta = SETTLE) -> bool:
    """Whether the kept answer described by `state` serves the window [start, end) without a request."""
    if not state:
        return False
    reaches_back = state.get("complete") or (
        state.get("first") is not None and pd.Timestamp(state["first"], tz="UTC") <= pd.Timestamp(start))
    return bool(reaches_back) and pd.Timestamp(state["fetched_at"]) >= pd.Timestamp(end) + settle


def need_from(state: dict | None, start) -> date | None:
    """What `plan_requests` must know of a series to size its request for a window starting at `start`:
    None (never loaded: `full`), else the date new data is needed from (`compact` when recent)."""
    if not state or not state.get("last"):
        return None
    first = pd.Timestamp(state["first"], tz="UTC")
    if state.get("complete") or first <= pd.Timestamp(start):
        return date.fromisoformat(state["last"])  # extend the kept answer forward
    return pd.Timestamp(start).date()  # the window lies before what is kept


def merge_answer(kept: pd.DataFrame | None, state: dict | None, fetch: alphavantage.Fetch,
                 fetched_at: pd.Timestamp) -> tuple[pd.DataFrame, dict]:
    """The kept answer updated with a new one. A full answer replaces it; a compact one extends it
    when it reaches back to the kept last point, else (a gap between them) it starts over."""
    new = fetch.frame
    complete_answer = fetch.outputsize != "compact"
    if kept is None or kept.empty or complete_answer:
        frame, complete = new, complete_answer
    elif new.empty:
        return kept, state  # nothing learned: the kept answer still stands, as old as it was
    elif fetch.first_available is not None and fetch.first_available <= kept["ts"].max():
        frame = pd.concat([kept, new], ignore_index=True).drop_duplicates("ts", keep="last")
        complete = bool(state and state.get("complete"))
    else:
        frame, complete = new, False
    frame = frame.sort_values("ts", kind="stable").reset_index(drop=True)
    state = {
        "first": f"{frame['ts'].min():%Y-%m-%d}" if len(frame) else None,
        "last": f"{frame['ts'].max():%Y-%m-%d}" if len(frame) else None,
        "complete": complete,
        "fetched_at": pd.Timestamp(fetched_at).isoformat(),
        "outputsize": fetch.outputsize or "full",
        "rows": len(frame),
    }
    return frame, state


def on_day(frame: pd.DataFrame, day: date) -> pd.DataFrame:
    start, end = day_bounds(day)
    return frame[(frame["ts"] >= start) & (frame["ts"] < end)]


def _cache_path(name: str) -> str:
    return f"{CACHE_PREFIX}/{name}.json"


def _kept(store: Lake, loaded: dict) -> tuple[dict[str, pd.DataFrame | None], dict[str, dict | None]]:
    """Kept answers and their states; a state without its answer counts as never loaded."""
    frames, states = {}, {}
    for name in SERIES:
        doc = store.get_document(_cache_path(name)) if loaded.get(name) else None
        frames[name] = frame_from_doc(doc) if doc else None
        states[name] = loaded.get(name) if doc else None
    return frames, states


# -- the asset ----------------------------------------------------------------------------------------

@dg.asset(
    group_name="ingest",
    partitions_def=daily,
    backfill_policy=BACKFILL_POLICY,
    output_required=False,
    pool="vendor_alphavantage",  # one step at a time spends the shared daily budget and per-minute pace
    kinds={"python", "parquet"},
    description="Alpha Vantage daily series (`GET /query`: TIME_SERIES_DAILY SPY and QQQ, FX_DAILY EUR/USD "
    "and USD/JPY, DIGITAL_CURRENCY_DAILY BTC in USD, TREASURY_YIELD 10y and 2y, WTI, BRENT), one long "
    "frame with a `series` column. Partition D holds the observations dated D. Requests are planned "
    "within the daily budget (`requests_per_day`, persisted in `_status/alphavantage_budget.json`); a run "
    "the kept answers already cover sends none. Series deferred for lack of budget are not fetched and "
    "the partitions are recorded as degraded for the restoration sensor. No key: skipped.",
)
def alphavantage_daily(context: dg.AssetExecutionContext, lake: LakeResource, alphavantage_api: AlphaVantageResource):
    store, status = lake.lake(), lake.vendor_status()
    asset = context.asset_key.to_user_string()
    if skip_without_credentials(context, status, alphavantage_api, list(alphavantage.ENDPOINTS)):
        return
    source = ingest_source(context, lake, alphavantage_api)
    start, end = run_window(context)
    loaded = store.get_document(LOADED_DOC) or {}
    frames, states = _kept(store, loaded)
    budget = load_budget(store, alphavantage_api.requests_per_day)
    stale = {name: need_from(states[name], start) for name in SERIES if not covers(states[name], start, end)}
    planned, deferred = alphavantage.plan_requests(list(stale.items()), budget)
    skipped = dict.fromkeys(deferred, "")  # series -> why it was not fetched (deferred: filled in below)
    refused: dict[str, str] = {}  # function -> why (not entitled)
    stop = None  # rate limited: no further request this run
    fetched, sent = [], 0
    with alphavantage_api.http() as http:
        for request in planned:
            name, function = request.series, SERIES[request.series].function
            if stop or function in refused:
                skipped[name] = stop or refused[function]
                continue
            try:
                with tracked(status, VENDOR, function):
                    got = alphavantage.fetch_series(http, name, outputsize=request.outputsize,
                                                    api_key=alphavantage_api.api_key, budget=budget,
                                                    partition=context.partition_key_range.start)
            except NoAccessError as error:
                record_skipped(context, status, VENDOR, function, error)
                return
            except NotEntitledError as error:
                refused[function] = skipped[name] = f"not entitled: {error}"
                continue
            except RateLimitedError as error:  # the daily cap, or a throttle that outlasted its retries
                stop = skipped[name] = f"rate limited: {error}"
                continue
            finally:
                sent = http.requests_sent
                save_budget(store, budget)
            frames[name], loaded[name] = merge_answer(frames[name], states[name], got, pd.Timestamp.now(tz="UTC"))
            store.put_document(_cache_path(name), frame_to_doc(frames[name]))
            store.put_document(LOADED_DOC, loaded)
            fetched.append(name)

    for name in deferred:
        skipped[name] = (f"deferred for lack of budget: the daily budget of {budget.limit_per_day} requests "
                         f"has {budget.remaining} left ({budget.used_today} used on {budget.day} UTC)")
    fresh = [name for name in SERIES if name not in stale or name in fetched]
    first_skipped = next((name for name in SERIES if name in skipped), None)
    endpoint = SERIES[first_skipped].function if first_skipped else None
    reason = "; ".join(f"{name}: {why}" for name, why in skipped.items())
    run_metadata = {
        "budget_limit": budget.limit_per_day,
        "budget_used": budget.used_today,
        "budget_remaining": budget.remaining,
        "requests_sent": sent,
        "fetched_series": dg.MetadataValue.json(fetched),
        "served_from_kept_answers": dg.MetadataValue.json([n for n in SERIES if n not in stale]),
        "deferred_series": dg.MetadataValue.json(deferred),
        "skipped_series": dg.MetadataValue.json(skipped),
        "source": source,
    }
    if not fresh:  # nothing new to write: leave the partitions as they are, recorded for a retry
        for key in context.partition_keys:
            status.mark_degraded(asset, key, VENDOR, endpoint, "skipped", reason)
        context.log.warning(f"{asset} skipped, no series could be fetched: {reason}")
        return
    if skipped:
        context.log.warning(f"{asset}: series not fetched this run ({reason})")

    def build(key, day, _symbol):
        parts = [on_day(frames[name], day) for name in SERIES if frames[name] is not None]
        part = pd.concat(parts, ignore_index=True)
        written = store.write(alphavantage_ref(day), with_origin(part, source))
        if skipped:
            status.mark_degraded(asset, key, VENDOR, endpoint, "skipped", reason)
        else:
            status.clear_degraded(asset, key)
        counts = part["series"].value_counts()
        return {**frame_metadata(part, written.path), "source": source,
                "rows_per_series": dg.MetadataValue.json({n: int(counts.get(n, 0)) for n in SERIES})}

    result = build_each_partition(context, build)
    yield dg.MaterializeResult(metadata={**(result.metadata or {}), **run_metadata})


# -- restoration probe --------------------------------------------------------------------------------

_PROBE_ERRORS = {"no_credentials": NoCredentialsError, "no_access": NoAccessError,
                 "not_entitled": NotEntitledError, "rate_limited": RateLimitedError}


def probe(resource: AlphaVantageResource, endpoint: str, lake: LakeResource | None = None) -> None:
    """One compact request for a series of `endpoint` (a function), paid from the persisted daily
    budget (a spent budget sends nothing and answers rate_limited); raises the failure's VendorError.
    `lake` defaults to the configured lake (BTC_PLATFORM_LAKE_URL), where the budget lives."""
    store = (lake or LakeResource(url=Settings.from_env().lake_url)).lake()
    budget = load_budget(store, resource.requests_per_day)
    with resource.http() as http:
        try:
            result = alphavantage.probe(http, resource.require_key(), budget, series=PROBE_SERIES.get(endpoint, "SPY"))
        finally:
            save_budget(store, budget)
    if not result.ok:
        detail = result.message.removeprefix(f"{VENDOR} ").split(": ", 1)[-1]
        raise _PROBE_ERRORS.get(result.status, VendorError)(detail, vendor=VENDOR, endpoint=endpoint)


# The restoration sensor re-runs the degraded partitions when the function answers again.
RESTORABLE = {(VENDOR, function): probe for function in alphavantage.ENDPOINTS}
