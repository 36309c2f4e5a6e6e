"""FRED (and ALFRED vintages): `GET /fred/series/observations` and `GET /fred/series/vintagedates`.

The key travels as the `api_key` query parameter (that is FRED's API). It is registered as a secret of
the `VendorHTTP`, so error messages are redacted, and the `httpx` request log line (which prints the
full URL) goes through the shared filter in `http.py` that masks credential query parameters.

Canonical frame (`FRAME_COLUMNS`), one row per (series_id, date, real-time period):
- `series_id`; `date`: the observation date, UTC midnight;
- `value`: float64, NaN where FRED says "." (missing; never 0);
- `realtime_start`, `realtime_end`: UTC midnight of the first and last day the value was current, as
  FRED reports them (FRED clips them to the request's real-time window; the default window is
  today..today). FRED's open end "9999-12-31" ("still current") is **NaT**: pandas nanosecond
  timestamps end in 2262, and NaT reads as "no end" in `as_of`;
- `source` ("fred"), `ingested_at`.

Vintages: FRED refuses a request whose real-time window holds more than 2000 of the series' vintage
dates, so `fetch_vintages` first lists the vintage dates, splits the window at vintage dates into
chunks of at most 2000, and merges the chunks: a value that was current across a chunk boundary comes
back as two clipped rows, which are coalesced into one; identical duplicates collapse; two different
values for the same observation and real-time day fail the fetch.

Short pages: every page's envelope says how many rows the query holds (`count`) and which of them the
page is (`offset`, `limit`), so a page with fewer rows than min(limit, count - offset) lost some on the
way (a dropped page tail comes back with status 200). It is asked for again until it is whole, at
most `SHORT_PAGE_ASKS` requests in all, and the answers are merged (a vendor drops rows, it does not
invent them: two different values for one observation and real-time day still fail). A page still
short after that, two more answers agreeing with it, is taken as FRED's real answer, and the fetch
says so (`short_pages` - `short_pages_recovered`). One agreeing answer is not enough: in a fault storm
the same dropped tail comes back twice in a row often enough to write partial partitions.

Errors: FRED answers a bad or missing key with HTTP 400 whose `error_message` mentions `api_key`:
that is `NoAccessError`; other 400s (unknown series, bad parameters, the vintage cap) are
`BadRequestError`; 423 (a locked series) is `NotEntitledError`; 404 a `BadRequestError` (a wrong
path, FRED has no plan tiers); 429 and 5xx are retried by `VendorHTTP`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd

from btc_platform.vendors.errors import (
    BadRequestError,
    MalformedPayloadError,
    NoAccessError,
    NotEntitledError,
)
from btc_platform.vendors.http import VendorHTTP

VENDOR = "fred"
ENDPOINTS = {
    "observations": "/fred/series/observations",
    "vintagedates": "/fred/series/vintagedates",
}
# 120 requests per minute per key.
RATE_LIMIT_PER_S = 2.0
MAX_LIMIT = 100_000  # observations per page
VINTAGE_DATES_LIMIT = 10_000  # vintage dates per page
MAX_VINTAGE_DATES = 2000  # vintage dates per real-time window of one observations request
REALTIME_MIN = "1776-07-04"
REALTIME_MAX = "9999-12-31"
SHORT_PAGE_ASKS = 3  # requests per short page at most: the first answer and two that must agree with it


@dataclass(frozen=True)
class SeriesInfo:
    frequency: str  # "d", "m", "q"
    description: str


SERIES: dict[str, SeriesInfo] = {
    "DGS10": SeriesInfo("d", "10-year Treasury constant maturity yield, percent"),
    "DGS2": SeriesInfo("d", "2-year Treasury constant maturity yield, percent"),
    "T10Y2Y": SeriesInfo("d", "10-year minus 2-year Treasury yield spread, percent"),
    "VIXCLS": SeriesInfo("d", "CBOE Volatility Index (VIX), close"),
    "SP500": SeriesInfo("d", "S&P 500 index, close"),
    "DTWEXBGS": SeriesInfo("d", "Nominal broad US dollar index"),
    "DCOILWTICO": SeriesInfo("d", "WTI crude oil spot price, USD per barrel"),
    "CPIAUCSL": SeriesInfo("m", "CPI for all urban consumers, all items, seasonally adjusted"),
    "UNRATE": SeriesInfo("m", "Unemployment rate, percent, seasonally adjusted"),
    "FEDFUNDS": SeriesInfo("m", "Effective federal funds rate, monthly average, percent"),
    "M2SL": SeriesInfo("m", "M2 money stock, billions USD, seasonally adjusted"),
    "GDP": SeriesInfo("q", "Gross domestic product, billions USD, SAAR"),
}

FRAME_COLUMNS = ["series_id", "date", "value", "realtime_start", "realtime_end", "source", "ingested_at"]
_OBS_FIELDS = ("realtime_start", "realtime_end", "date", "value")
_ONE_DAY = pd.Timedelta(days=1)

log = logging.getLogger("btc_platform.vendors.fred")


# -- HTTP ---------------------------------------------------------------------------------------

def make_http(base_url: str, api_key: str | None, **overrides) -> VendorHTTP:
    """A `VendorHTTP` for FRED at ~2 requests/s; `api_key` is registered as a secret (redacted)."""
    secrets = tuple(overrides.pop("secrets", ())) + ((api_key,) if api_key else ())
    status_errors = {423: NotEntitledError, **overrides.pop("status_errors", {})}
    kw = {"rate_per_s": RATE_LIMIT_PER_S, "burst": 1, **overrides}
    return VendorHTTP(vendor=VENDOR, base_url=base_url, secrets=secrets, status_errors=status_errors, **kw)


def _get(http: VendorHTTP, endpoint: str, params: dict[str, Any], *, api_key: str | None,
         partition: str | None, parse=None) -> Any:
    path = ENDPOINTS.get(endpoint, endpoint)
    if api_key and api_key not in http.secrets:
        http.secrets = tuple(http.secrets) + (api_key,)
    query = {**params, "file_type": "json"}
    if api_key:
        query["api_key"] = api_key
    try:
        return http.get_json(path, query, endpoint=path, partition=partition, parse=parse)
    except BadRequestError as e:
        # FRED says "key missing / not registered / malformed" with a 400 that names api_key.
        if e.http_status == 400 and "api_key" in e.detail.lower():
            raise NoAccessError(e.detail, vendor=VENDOR, endpoint=path, partition=partition,
                                http_status=400) from None
        raise


def probe(http: VendorHTTP, endpoint: str, api_key: str | None) -> int:
    """One cheap request to `endpoint` ("observations" or "vintagedates"); raises the taxonomy's
    error (NoAccessError, NotEntitledError, ...) when it fails, else returns the rows it saw."""
    path = ENDPOINTS.get(endpoint)
    if path is None:
        raise ValueError(f"unknown FRED endpoint {endpoint!r}; expected one of {sorted(ENDPOINTS)}")
    if endpoint == "observations":
        payload = _get(http, endpoint, {"series_id": "DGS10", "limit": 1, "sort_order": "desc"},
                       api_key=api_key, partition=None)
        return len(_observations_of(payload, endpoint=path, partition=None))
    payload = _get(http, endpoint, {"series_id": "GDP", "limit": 1}, api_key=api_key, partition=None)
    return len(_vintage_dates_of(payload, endpoint=path, partition=None))


# -- parsing ------------------------------------------------------------------------------------

def _malformed(why: str, endpoint: str, partition: str | None) -> MalformedPayloadError:
    return MalformedPayloadError(why, vendor=VENDOR, endpoint=ENDPOINTS.get(endpoint, endpoint),
                                 partition=partition)


def _envelope_int(payload: dict, key: str, endpoint: str, partition: str | None) -> int:
    v = payload.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise _malformed(f"envelope field {key!r} must be a non-negative integer, got {str(v)[:40]}",
                         endpoint, partition)
    return v


def _observations_of(payload: Any, *, endpoint: str, partition: str | None) -> list:
    if not isinstance(payload, dict):
        raise _malformed(f"expected a JSON object with 'observations', got {type(payload).__name__}",
                         endpoint, partition)
    if "error_message" in payload:  # an error body served with HTTP 200
        raise _malformed(f"error body with HTTP 200: {str(payload['error_message'])[:200]}", endpoint, partition)
    obs = payload.get("observations")
    if not isinstance(obs, list):
        raise _malformed("envelope has no 'observations' list", endpoint, partition)
    return obs


def _vintage_dates_of(payload: Any, *, endpoint: str, partition: str | None) -> list:
    if not isinstance(payload, dict) or not isinstance(payload.get("vintage_dates"), list):
        raise _malformed("expected a JSON object with a 'vintage_dates' list", endpoint, partition)
    dates = payload["vintage_dates"]
    if not all(isinstance(d, str) and _is_iso_date(d) for d in dates):
        bad = next(d for d in dates if not (isinstance(d, str) and _is_iso_date(d)))
        raise _malformed(f"vintage date {str(bad)[:40]!r} is not YYYY-MM-DD", endpoint, partition)
    return dates


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _is_iso_date(s: str) -> bool:
    if not _ISO_DATE.match(s):
        return False
    try:
        date.fromisoformat(s)
    except ValueError:
        return False
    return True


def _parse_dates(col: pd.Series, name: str, *, open_end: bool, endpoint: str, partition: str | None) -> pd.Series:
    raw = col.astype(str)
    if open_end:
        raw = raw.mask(raw == REALTIME_MAX)
    parsed = pd.to_datetime(raw, format="%Y-%m-%d", errors="coerce", utc=True)
    bad = parsed.isna() & raw.notna()
    if bad.any():
        raise _malformed(f"observation field {name!r} is not a date: {raw[bad].iloc[0]!r}", endpoint, partition)
    return parsed.astype("datetime64[ns, UTC]")


def parse_observations(
    payload: Any,
    *,
    series_id: str,
    endpoint: str = "observations",
    partition: str | None = None,
    ingested_at: datetime | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Validate one `series/observations` body and return its rows as the canonical frame (in body order)."""
    obs = _observations_of(payload, endpoint=endpoint, partition=partition)
    ingested = pd.Timestamp(ingested_at or datetime.now(timezone.utc)).as_unit("ns")
    ingested = ingested.tz_localize("UTC") if ingested.tzinfo is None else ingested.tz_convert("UTC")
    if not obs:
        return _empty_frame()
    if not all(isinstance(o, dict) for o in obs):
        raise _malformed("observations must be objects", endpoint, partition)
    raw = pd.DataFrame.from_records(obs)
    missing = [f for f in _OBS_FIELDS if f not in raw.columns]
    if missing:
        raise _malformed(f"observations lack field(s) {missing}", endpoint, partition)
    for f in _OBS_FIELDS:
        if not raw[f].map(type).eq(str).all():
            bad = raw.loc[~raw[f].map(type).eq(str), f].iloc[0]
            raise _malformed(f"observation field {f!r} must be a string, got {str(bad)[:40]!r}", endpoint, partition)
    is_missing = raw["value"].eq(".")
    values = pd.to_numeric(raw["value"].mask(is_missing), errors="coerce").astype("float64")
    bad = (values.isna() & ~is_missing) | np.isinf(values)
    if bad.any():
        raise _malformed(f"observation value {raw.loc[bad, 'value'].iloc[0][:40]!r} is neither a number nor '.'",
                         endpoint, partition)
    kw = {"endpoint": endpoint, "partition": partition}
    frame = pd.DataFrame(
        {
            "series_id": series_id,
            "date": _parse_dates(raw["date"], "date", open_end=False, **kw),
            "value": values,
            "realtime_start": _parse_dates(raw["realtime_start"], "realtime_start", open_end=False, **kw),
            "realtime_end": _parse_dates(raw["realtime_end"], "realtime_end", open_end=True, **kw),
            "source": VENDOR,
            "ingested_at": ingested,
        }
    )
    inverted = frame["realtime_end"].notna() & (frame["realtime_end"] < frame["realtime_start"])
    if inverted.any():
        raise _malformed("an observation's realtime_end is before its realtime_start", endpoint, partition)
    return frame[FRAME_COLUMNS]


def _empty_frame() -> pd.DataFrame:
    ts = pd.Series([], dtype="datetime64[ns, UTC]")
    return pd.DataFrame(
        {
            "series_id": pd.Series([], dtype=object),
            "date": ts,
            "value": pd.Series([], dtype="float64"),
            "realtime_start": ts,
            "realtime_end": ts,
            "source": pd.Series([], dtype=object),
            "ingested_at": ts,
        }
    )[FRAME_COLUMNS]


def coalesce(frame: pd.DataFrame, *, endpoint: str = "observations", partition: str | None = None) -> pd.DataFrame:
    """Sort by (series_id, date, realtime_start) and merge rows of one observation whose real-time
    periods overlap or touch and whose values agree (NaN agrees with NaN): chunk boundaries and
    duplicated rows disappear. Overlapping periods with different values are a malformed answer."""
    if frame.empty:
        return frame.reset_index(drop=True)
    f = frame.sort_values(["series_id", "date", "realtime_start"], kind="stable").reset_index(drop=True)
    end_ns = f["realtime_end"].to_numpy("datetime64[ns]").astype("int64")
    end_ns = np.where(f["realtime_end"].isna().to_numpy(), np.iinfo("int64").max, end_ns)
    start_ns = f["realtime_start"].to_numpy("datetime64[ns]").astype("int64")
    key = f["series_id"].astype(str) + "|" + f["date"].astype("int64").astype(str)
    same_obs = (key == key.shift()).to_numpy()
    # the furthest end reached so far by the observation's earlier rows
    reach = pd.Series(end_ns).groupby(key.to_numpy()).cummax().shift().to_numpy()
    reach = np.where(same_obs, reach, np.nan)
    value = f["value"].to_numpy()
    prev_value = np.r_[np.nan, value[:-1]]
    same_value = (value == prev_value) | (np.isnan(value) & np.isnan(prev_value))
    day = _ONE_DAY.value
    with np.errstate(invalid="ignore"):
        overlaps = same_obs & (start_ns <= reach)
        touches = same_obs & (start_ns <= reach + day)  # reach may be int64 max: float, no overflow
    conflict = overlaps & ~same_value
    if conflict.any():
        row = f.loc[np.flatnonzero(conflict)[0]]
        raise _malformed(
            f"two different values for {row['series_id']} {row['date']:%Y-%m-%d} "
            f"known on {row['realtime_start']:%Y-%m-%d}",
            endpoint,
            partition,
        )
    group = np.cumsum(~(touches & same_value))
    first = f.groupby(group, sort=False).head(1).set_index(pd.Index(np.unique(group)))
    last_end = pd.Series(end_ns).groupby(group).max().to_numpy()
    open_end = last_end == np.iinfo("int64").max
    ends = pd.DatetimeIndex(np.where(open_end, 0, last_end).astype("datetime64[ns]")).tz_localize("UTC")
    first["realtime_end"] = ends.where(~open_end, pd.NaT)
    return first.reset_index(drop=True)[FRAME_COLUMNS]


# -- fetching -----------------------------------------------------------------------------------

@dataclass
class FredFetch:
    frame: pd.DataFrame
    pages: int  # observation pages read
    requests: int  # HTTP requests sent, retries and the vintage-date listing included
    chunks: int = 1  # real-time windows requested (vintages)
    short_pages: int = 0  # pages asked again because they held fewer rows than their envelope says
    short_pages_recovered: int = 0  # of them, pages whose later answer held rows the first lacked


def _day(x: str | date | datetime | pd.Timestamp | None) -> str | None:
    if x is None:
        return None
    if isinstance(x, str):
        if x in (REALTIME_MIN, REALTIME_MAX) or _is_iso_date(x):
            return x
        x = pd.Timestamp(x)
    return f"{pd.Timestamp(x):%Y-%m-%d}"


@dataclass
class ShortPages:
    short_pages: int = 0  # pages asked again because they held fewer rows than their envelope says
    short_pages_recovered: int = 0  # of them, pages whose later answer held rows the first lacked


def _whole_page(ask, merge, size, short: ShortPages):
    """`ask()` -> (rows, count): the page, asked again while it holds fewer than `size(count)` rows
    (at most SHORT_PAGE_ASKS requests in all); `merge(a, b)` is the union of two answers."""
    rows, count = ask()
    if len(merge(rows, rows)) >= size(count):
        return rows, count
    short.short_pages += 1
    added = False
    for _ in range(SHORT_PAGE_ASKS - 1):
        again, again_count = ask()
        merged, count = merge(rows, again), max(count, again_count)
        added = added or len(merged) > len(merge(rows, rows))
        rows = merged
        if len(rows) >= size(count):
            break  # whole
    short.short_pages_recovered += added
    return rows, count


def _frame_union(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([a, b], ignore_index=True).drop_duplicates(ignore_index=True)


def _pages(http, series_id, params, *, api_key, partition, page_limit, ingested_at,
           short: ShortPages) -> tuple[list[pd.DataFrame], int]:
    frames, offset, pages = [], 0, 0
    path = ENDPOINTS["observations"]
    while True:
        query = {**params, "series_id": series_id, "limit": page_limit, "offset": offset}
        frame, count = _whole_page(
            lambda: _get(  # parsed inside the retry loop: a schema break is fetched once more
                http, "observations", query, api_key=api_key, partition=partition,
                parse=lambda payload: (parse_observations(payload, series_id=series_id, endpoint=path,
                                                          partition=partition, ingested_at=ingested_at),
                                       _envelope_int(payload, "count", path, partition))),
            _frame_union, lambda count: min(page_limit, count - offset), short)
        pages += 1
        frames.append(frame)
        offset += page_limit
        if offset >= count:
            return frames, pages


def _check_window(frame: pd.DataFrame, observation_start, observation_end, partition) -> None:
    if frame.empty:
        return
    lo = pd.Timestamp(observation_start, tz="UTC") if observation_start else None
    hi = pd.Timestamp(observation_end, tz="UTC") if observation_end else None
    if (lo is not None and (frame["date"] < lo).any()) or (hi is not None and (frame["date"] > hi).any()):
        raise _malformed(f"observations outside the requested window {observation_start}..{observation_end}",
                         "observations", partition)


def fetch_observations(
    http: VendorHTTP,
    series_id: str,
    *,
    observation_start: str | date | None = None,
    observation_end: str | date | None = None,
    partition: str | None = None,
    api_key: str | None,
    page_limit: int = MAX_LIMIT,
    ingested_at: datetime | None = None,
) -> FredFetch:
    """The latest values (FRED's default real-time window, today..today), oldest first."""
    if not 1 <= page_limit <= MAX_LIMIT:
        raise ValueError(f"page_limit must be within 1..{MAX_LIMIT}")
    before = http.requests_sent
    ingested_at = ingested_at or datetime.now(timezone.utc)
    params = {k: v for k, v in (("observation_start", _day(observation_start)),
                                ("observation_end", _day(observation_end))) if v}
    short = ShortPages()
    frames, pages = _pages(http, series_id, params, api_key=api_key, partition=partition,
                           page_limit=page_limit, ingested_at=ingested_at, short=short)
    frame = coalesce(pd.concat(frames, ignore_index=True), partition=partition)
    _check_window(frame, params.get("observation_start"), params.get("observation_end"), partition)
    log.info("fred %s %s: %d pages (%d short, asked again; %d of them recovered rows), %d observations",
             series_id, partition or "", pages, short.short_pages, short.short_pages_recovered, len(frame))
    return FredFetch(frame, pages, http.requests_sent - before, short_pages=short.short_pages,
                     short_pages_recovered=short.short_pages_recovered)


def fetch_vintage_dates(http: VendorHTTP, series_id: str, *, api_key: str | None, partition: str | None = None,
                        page_limit: int = VINTAGE_DATES_LIMIT, short: ShortPages | None = None) -> list[str]:
    """Every vintage date of the series (YYYY-MM-DD, ascending), paged."""
    dates: list[str] = []
    offset = 0
    path = ENDPOINTS["vintagedates"]
    short = short if short is not None else ShortPages()
    while True:
        query = {"series_id": series_id, "limit": page_limit, "offset": offset, "sort_order": "asc"}
        page, count = _whole_page(
            lambda: _get(http, "vintagedates", query, api_key=api_key, partition=partition,
                         parse=lambda payload: (_vintage_dates_of(payload, endpoint=path, partition=partition),
                                                _envelope_int(payload, "count", path, partition))),
            lambda a, b: sorted(set(a) | set(b)), lambda count: min(page_limit, count - offset), short)
        dates.extend(page)
        offset += page_limit
        if offset >= count:
            return sorted(set(dates))


def vintage_windows(vintage_dates: list[str], realtime_start: str, realtime_end: str,
                    max_dates: int = MAX_VINTAGE_DATES) -> list[tuple[str, str]]:
    """Split [realtime_start, realtime_end] at vintage dates into windows holding at most `max_dates`
    vintage dates each; the windows tile the range without gaps or overlaps."""
    if max_dates < 1:
        raise ValueError("max_dates must be >= 1")
    inside = sorted(d for d in set(vintage_dates) if realtime_start <= d <= realtime_end)
    if len(inside) <= max_dates:
        return [(realtime_start, realtime_end)]
    starts = [realtime_start] + inside[max_dates::max_dates]
    ends = [f"{date.fromisoformat(s) - timedelta(days=1):%Y-%m-%d}" for s in starts[1:]] + [realtime_end]
    return list(zip(starts, ends))


def fetch_vintages(
    http: VendorHTTP,
    series_id: str,
    *,
    realtime_start: str | date = REALTIME_MIN,
    realtime_end: str | date = REALTIME_MAX,
    observation_start: str | date | None = None,
    observation_end: str | date | None = None,
    partition: str | None = None,
    api_key: str | None,
    max_vintage_dates: int = MAX_VINTAGE_DATES,
    page_limit: int = MAX_LIMIT,
    ingested_at: datetime | None = None,
) -> FredFetch:
    """Every vintage of the series' observations in the real-time range (ALFRED, `output_type=1`),
    requested in windows of at most `max_vintage_dates` vintage dates, merged and de-duplicated."""
    if not 1 <= page_limit <= MAX_LIMIT:
        raise ValueError(f"page_limit must be within 1..{MAX_LIMIT}")
    before = http.requests_sent
    ingested_at = ingested_at or datetime.now(timezone.utc)
    rt_start, rt_end = _day(realtime_start), _day(realtime_end)
    if rt_start > rt_end:
        raise ValueError(f"realtime_start {rt_start} is after realtime_end {rt_end}")
    short = ShortPages()
    vintage_dates = fetch_vintage_dates(http, series_id, api_key=api_key, partition=partition, short=short)
    windows = vintage_windows(vintage_dates, rt_start, rt_end, max_vintage_dates)
    obs = {k: v for k, v in (("observation_start", _day(observation_start)),
                             ("observation_end", _day(observation_end))) if v}
    frames, pages = [], 0
    for start, end in windows:
        params = {**obs, "realtime_start": start, "realtime_end": end, "output_type": 1}
        got, n = _pages(http, series_id, params, api_key=api_key, partition=partition,
                        page_limit=page_limit, ingested_at=ingested_at, short=short)
        frames.extend(got)
        pages += n
    frame = coalesce(pd.concat(frames, ignore_index=True), partition=partition)
    _check_window(frame, obs.get("observation_start"), obs.get("observation_end"), partition)
    log.info("fred %s vintages %s..%s %s: %d windows, %d pages (%d short, asked again; %d of them recovered "
             "rows), %d rows", series_id, rt_start, rt_end, partition or "", len(windows), pages, short.short_pages,
             short.short_pages_recovered, len(frame))
    return FredFetch(frame, pages, http.requests_sent - before, chunks=len(windows), short_pages=short.short_pages,
                     short_pages_recovered=short.short_pages_recovered)


# -- point in time ------------------------------------------------------------------------------

def as_of(frame: pd.DataFrame, at: pd.Timestamp | datetime | str) -> pd.DataFrame:
    """For each (series_id, date), the value as it was known at `at`: the row whose real-time period
    holds `at` (realtime_start <= at < realtime_end + 1 day; NaT end = still current). Observations not
    yet published at `at` are absent. A day-granular realtime_start counts from UTC midnight, while
    FRED's sources publish during the day (e.g. 08:30 ET): for a strictly conservative join, pass `at`
    shifted back by the release-time margin you need."""
    at = pd.Timestamp(at)
    at = at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
    started = frame["realtime_start"] <= at
    not_ended = frame["realtime_end"].isna() | (at < frame["realtime_end"] + _ONE_DAY)
    known = frame[started & not_ended]
    # Periods of one observation do not overlap after `coalesce`; if they did, the latest start wins.
    known = known.sort_values(["series_id", "date", "realtime_start"], kind="stable")
    known = known.drop_duplicates(["series_id", "date"], keep="last")
    return known.reset_index(drop=True)
