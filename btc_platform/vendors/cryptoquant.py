"""CryptoQuant on-chain metrics: `GET /v1/btc/<category>/<metric>?window&from&to&limit`.

Documented API (https://cryptoquant.com/docs), followed as written:

- auth `Authorization: Bearer <token>`;
- `window` is `day`, `hour` or `block` (we use day and hour); `from` / `to` are `YYYYMMDD` or
  `YYYYMMDDTHHMMSS` (UTC) and both bound the rows inclusively; `limit` is at most 100000;
- every answer is the envelope `{"status": {"code", "message"}, "result": {"window", "data": [...]}}`;
  data rows name their time by `date` ("2019-10-02") in the daily window and by `datetime`
  ("2019-10-02 13:00:00", the hour's open) in the hourly one; we read `datetime` first and `date` when
  it is absent, so either form is accepted in either window. Rows come newest first; we sort.
- errors use the same envelope, `status.code` being 400 bad_request, 401 unauthorized, 403 forbidden,
  404 not_found, 405 method_not_allowed, 429 too_many_requests, 500 internal_server_error.

Taxonomy (DESIGN.md): 401 -> NoAccessError (token missing or rejected); 403 -> NotEntitledError (the
plan lacks this endpoint or this window: the user's plan lacks `window=hour`); 429 -> RateLimitedError;
5xx -> TransientError; 400/404/405 -> BadRequestError. A `status.code` other than 200 inside an HTTP 200
body is classified exactly like that HTTP status, inside the retry loop (so a 429-in-200 is retried).

Canonical frame: LONG, one row per (ts, metric): `ts, metric, value, window, is_fallback, source,
ingested_at`. Long rather than wide because each metric carries its own provenance: entitlements are
per endpoint and window, so one partition can hold hourly netflow next to daily MVRV (published daily
only) or next to a metric that fell back to daily; a wide frame would need one window/fallback column
per metric. New metrics also leave the schema (and the lake partition's columns) unchanged. Pivoting
to wide is one `pivot_table` downstream.

Time labels: a row is labelled by the OPEN of its window (UTC): a day row sits at 00:00 of its day, an
hour row at the hour's start. A day's value is only final after the day ends: features must join it
as of `ts + 1 day` (and an hour's at `ts + 1 hour`).

Short pages: a request names its rows exactly (`from`..`to` in steps of `window`), so an answer with
fewer rows than the windows of that range that have ended is short: a dropped page tail comes back
with status 200, or the series really lacks those windows (before its history begins, a day not
published). It is asked for again until it is whole, at most `SHORT_PAGE_ASKS` requests in all, and
the answers are merged (a vendor drops rows, it does not invent them: two different values for one
time still fail). A page still short after that is the series' real rows: two more answers agreed
with it. One agreeing answer is not enough: in a fault storm the same dropped tail comes back twice
in a row often enough to write partial partitions (benchmarks/faults.py).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import pandas as pd

from btc_platform.vendors.errors import MalformedPayloadError, NoCredentialsError, NotEntitledError
from btc_platform.vendors.http import VendorHTTP, default_error_class

VENDOR = "cryptoquant"
SOURCE = "cryptoquant"
MAX_LIMIT = 100_000
WINDOWS = ("day", "hour")
STEP = {"day": timedelta(days=1), "hour": timedelta(hours=1)}
# Modelled limit (the plan's exact figure is not in the documentation we follow): the twin enforces
# 5 requests/s with bursts of 10; we pace at 4/s with the same burst. A stricter real plan still works:
# its 429s are retried (Retry-After honoured) within the budget.
RATE_LIMIT_PER_S = 4.0
RATE_LIMIT_BURST = 10
STATUS_ERRORS = {403: NotEntitledError}
SHORT_PAGE_ASKS = 3  # requests per short page at most: the first answer and two that must agree with it

COLUMNS = ["ts", "metric", "value", "window", "is_fallback", "source", "ingested_at"]

log = logging.getLogger("btc_platform.vendors.cryptoquant")


@dataclass(frozen=True)
class Metric:
    """One documented series: the endpoint path, its fixed query parameters, the value field we keep,
    the windows the endpoint offers, and the endpoint family used for status and probing."""

    path: str
    field: str
    family: str
    params: dict[str, str] = field(default_factory=dict)
    windows: tuple[str, ...] = ("day", "hour")
    unit: str = ""
    description: str = ""

    def endpoint(self, window: str) -> str:
        """How errors name the request: the documented path and the window."""
        return f"{self.path} (window={window})"

    def endpoint_key(self, window: str) -> str:
        """The status/probe key, e.g. "exchange_flows_hour"."""
        return f"{self.family}_{window}"


_ALL_EXCHANGE = {"exchange": "all_exchange"}

METRICS: dict[str, Metric] = {
    "exchange_netflow_total": Metric(
        "/v1/btc/exchange-flows/netflow", "netflow_total", "exchange_flows", _ALL_EXCHANGE,
        unit="BTC", description="inflow minus outflow of all exchanges",
    ),
    "exchange_inflow_total": Metric(
        "/v1/btc/exchange-flows/inflow", "inflow_total", "exchange_flows", _ALL_EXCHANGE,
        unit="BTC", description="BTC deposited to all exchanges",
    ),
    "exchange_outflow_total": Metric(
        "/v1/btc/exchange-flows/outflow", "outflow_total", "exchange_flows", _ALL_EXCHANGE,
        unit="BTC", description="BTC withdrawn from all exchanges",
    ),
    "exchange_reserve": Metric(
        "/v1/btc/exchange-flows/reserve", "reserve", "exchange_flows", _ALL_EXCHANGE,
        unit="BTC", description="BTC held by all exchanges at the end of the window",
    ),
    "exchange_whale_ratio": Metric(
        "/v1/btc/flow-indicator/exchange-whale-ratio", "exchange_whale_ratio", "flow_indicator",
        _ALL_EXCHANGE, unit="ratio", description="top 10 inflows / total inflow",
    ),
    "miner_reserve": Metric(
        "/v1/btc/miner-flows/reserve", "reserve", "miner_flows", {"miner": "all_miner"},
        unit="BTC", description="BTC held by all miners at the end of the window",
    ),
    "transactions_count_total": Metric(
        "/v1/btc/network-data/transactions-count", "transactions_count_total", "network_data",
        unit="count", description="on-chain transactions",
    ),
    "active_addresses": Metric(
        "/v1/btc/network-data/addresses-count", "addresses_count_active", "network_data",
        unit="count", description="distinct addresses active in the window",
    ),
    "mvrv": Metric(
        "/v1/btc/market-indicator/mvrv", "mvrv", "market_indicator", windows=("day",),
        unit="ratio", description="market cap / realized cap (published daily only)",
    ),
}

# Probe targets: one cheap, representative request per endpoint family and window.
ENDPOINTS: dict[str, tuple[str, str]] = {}
for _name, _m in METRICS.items():
    for _w in _m.windows:
        ENDPOINTS.setdefault(_m.endpoint_key(_w), (_name, _w))
del _name, _m, _w


def _status_text(message: str) -> str:
    """`forbidden: <description>` from a CryptoQuant error envelope; other text unchanged."""
    try:
        body = json.loads(message)
    except ValueError:
        return message
    status = body.get("status") if isinstance(body, dict) else None
    if isinstance(status, dict) and status.get("message"):
        text = str(status["message"])
        if status.get("description"):
            text += f": {status['description']}"
        return text[:300]
    return message


class CryptoQuantHTTP(VendorHTTP):
    """VendorHTTP that also reads the `status` envelope: `status.code != 200` in an HTTP 200 body
    raises the class that HTTP status would, inside the retry loop; error bodies are shown as the
    envelope's `message: description`."""

    def _error(self, cls, message, *, endpoint, **kw):
        return super()._error(cls, _status_text(message), endpoint=endpoint, **kw)

    def _get_once(self, path, params, *, endpoint, partition) -> Any:
        body = super()._get_once(path, params, endpoint=endpoint, partition=partition)
        status = body.get("status") if isinstance(body, dict) else None
        code = status.get("code") if isinstance(status, dict) else None
        if isinstance(code, int) and not isinstance(code, bool) and code != 200:
            cls = self.status_errors.get(code) or default_error_class(code)
            what = status.get("message") or "error"
            if status.get("description"):
                what = f"{what}: {status['description']}"
            raise self._error(
                cls,
                f"status.code {code} in an HTTP 200 body ({what})"[:300],
                endpoint=endpoint,
                partition=partition,
                http_status=200,
            )
        return body


def make_http(base_url: str, token: str, **overrides) -> CryptoQuantHTTP:
    """The client for one token. The token only travels in the Authorization header and is
    registered as a secret, so it is redacted from every error message. No token (CQ_TOKEN unset)
    raises NoCredentialsError: the vendor is skipped, never called."""
    if not token:
        raise NoCredentialsError("no token configured (CQ_TOKEN)", vendor=VENDOR, endpoint="*")
    overrides.setdefault("rate_per_s", RATE_LIMIT_PER_S)
    overrides.setdefault("burst", RATE_LIMIT_BURST)
    headers = {**overrides.pop("headers", {}), "Authorization": f"Bearer {token}"}
    secrets = tuple(overrides.pop("secrets", ())) + (token,)
    status_errors = {**STATUS_ERRORS, **overrides.pop("status_errors", {})}
    return CryptoQuantHTTP(
        vendor=VENDOR, base_url=base_url, headers=headers, secrets=secrets,
        status_errors=status_errors, **overrides,
    )


# -- request building -------------------------------------------------------------------------
def _utc(x: datetime | date | pd.Timestamp) -> datetime:
    if isinstance(x, pd.Timestamp):
        x = x.to_pydatetime()
    if isinstance(x, date) and not isinstance(x, datetime):
        return datetime.combine(x, time(), tzinfo=timezone.utc)
    if x.tzinfo is None:
        raise ValueError(f"naive datetime {x!r}: pass timezone-aware UTC times")
    return x.astimezone(timezone.utc)


def _ceil(t: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    n = math.ceil((t - epoch) / step)
    return epoch + n * step


def format_time(t: datetime, window: str) -> str:
    """`from`/`to` as documented: YYYYMMDD for days, YYYYMMDDTHHMMSS for hours."""
    return t.strftime("%Y%m%d") if window == "day" else t.strftime("%Y%m%dT%H%M%S")


def request_windows(
    start: datetime | date, end: datetime | date, window: str, max_rows: int = MAX_LIMIT
) -> list[tuple[datetime, datetime, int]]:
    """Cover the rows labelled in [start, end) with requests of at most `max_rows` rows:
    (first row, last row inclusive, row count) each."""
    if window not in STEP:
        raise ValueError(f"window {window!r} is not one of {WINDOWS}")
    if not 1 <= max_rows <= MAX_LIMIT:
        raise ValueError(f"max_rows must be in 1..{MAX_LIMIT}")
    step = STEP[window]
    start, end = _utc(start), _utc(end)
    cursor = _ceil(start, step)
    out = []
    while cursor < end:
        n = min(max_rows, math.ceil((end - cursor) / step))
        out.append((cursor, cursor + (n - 1) * step, n))
        cursor += n * step
    return out


# -- parsing ----------------------------------------------------------------------------------
def _read_time(raw: Any, window: str) -> datetime | None:
    if not isinstance(raw, str):
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(raw.strip(), fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    return None


def parse_page(
    payload: Any,
    *,
    metric: str,
    window: str,
    bounds: tuple[datetime, datetime],
    partition: str | None,
) -> list[tuple[datetime, float]]:
    """Validate one answer and return its (ts, value) rows; anything off fails the whole fetch."""
    m = METRICS[metric]
    endpoint = m.endpoint(window)

    def malformed(why: str) -> MalformedPayloadError:
        return MalformedPayloadError(why, vendor=VENDOR, endpoint=endpoint, partition=partition)

    if not isinstance(payload, dict):
        raise malformed(f"expected the status/result envelope, got {type(payload).__name__}")
    status = payload.get("status")
    if not isinstance(status, dict) or status.get("code") != 200:
        raise malformed(f"envelope has no success status ({str(status)[:80]})")
    result = payload.get("result")
    if not isinstance(result, dict):
        raise malformed("envelope has no `result` object")
    if result.get("window") not in (None, window):
        # A silent downgrade (day rows answered to an hourly request) must not pass as hourly.
        raise malformed(f"asked for window={window}, answered window={result.get('window')!r}")
    data = result.get("data")
    if not isinstance(data, list):
        raise malformed(f"`result.data` must be a list, got {type(data).__name__}")
    step = STEP[window]
    lo, hi = bounds
    rows = []
    for row in data:
        if not isinstance(row, dict):
            raise malformed(f"data rows must be objects; got {str(row)[:80]}")
        raw_t = row.get("datetime", row.get("date"))
        ts = _read_time(raw_t, window)
        if ts is None:
            raise malformed(f"row has no readable `datetime`/`date`: {str(row)[:80]}")
        if m.field not in row:
            raise malformed(f"row for {raw_t} lacks the field `{m.field}`")
        value = row[m.field]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise malformed(f"`{m.field}` for {raw_t} is not a number: {str(value)[:40]!r}")
        if not math.isfinite(value):
            raise malformed(f"`{m.field}` for {raw_t} is not finite")
        if (ts - datetime(1970, 1, 1, tzinfo=timezone.utc)) % step:
            raise malformed(f"row time {raw_t} is not aligned to window={window}")
        if not lo <= ts <= hi:
            raise malformed(f"row time {raw_t} lies outside the requested {lo:%F %T}..{hi:%F %T}")
        rows.append((ts, float(value)))
    return rows


# -- fetching ---------------------------------------------------------------------------------
@dataclass
class ShortPages:
    """Pages asked again because they held fewer rows than their range, and of them those whose
    later answers held rows the first lacked (the rest were accepted as the series' real rows)."""

    short_pages: int = 0
    short_pages_recovered: int = 0


def rows_due(first: datetime, last: datetime, window: str, now: datetime | None = None) -> int:
    """Rows a request for first..last (inclusive) can hold: the windows that have ended by `now`."""
    step = STEP[window]
    now = _utc(now or datetime.now(timezone.utc))
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    ended = epoch + ((now - epoch) // step) * step - step  # the open of the last window that has ended
    done = min(last, ended)
    return 0 if done < first else (done - first) // step + 1


def fetch_metric(
    http: VendorHTTP,
    metric: str,
    start: datetime | date,
    end: datetime | date,
    *,
    window: str = "day",
    partition: str | None = None,
    ingested_at: datetime | None = None,
    max_rows: int = MAX_LIMIT,
    short: ShortPages | None = None,
) -> pd.DataFrame:
    """One metric's rows labelled in [start, end), oldest first, in the canonical long frame.
    Short pages are counted in `short` when given."""
    if metric not in METRICS:
        raise ValueError(f"unknown CryptoQuant metric {metric!r}; known: {sorted(METRICS)}")
    m = METRICS[metric]
    if window not in m.windows:
        raise ValueError(f"{metric} ({m.path}) is published for window {m.windows}, not {window!r}")
    short = short if short is not None else ShortPages()
    rows: list[tuple[datetime, float]] = []
    for first, last, n in request_windows(start, end, window, max_rows):
        def ask():
            return http.get_json(
                m.path,
                {**m.params, "window": window, "from": format_time(first, window),
                 "to": format_time(last, window), "limit": n},
                endpoint=m.endpoint(window),
                partition=partition,
                parse=lambda payload: parse_page(payload, metric=metric, window=window, bounds=(first, last),
                                                 partition=partition),  # inside the retry loop
            )

        page, due = ask(), rows_due(first, last, window)
        if len({t for t, _ in page}) < due:
            short.short_pages += 1
            added = False
            for _ in range(SHORT_PAGE_ASKS - 1):
                seen = set(page)
                new = [r for r in ask() if r not in seen]
                added, page = added or bool(new), page + new
                if len({t for t, _ in page}) >= due:
                    break  # whole
            short.short_pages_recovered += added
        rows.extend(page)
    frame = _to_frame(rows, metric, window, partition, ingested_at or datetime.now(timezone.utc))
    log.info("cryptoquant %s window=%s %s: %d rows", metric, window,
             partition or f"{_utc(start):%F}..{_utc(end):%F}", len(frame))
    return frame


def fetch_with_fallback(
    http: VendorHTTP,
    metric: str,
    start: datetime | date,
    end: datetime | date,
    partition: str | None = None,
    *,
    ingested_at: datetime | None = None,
    short: ShortPages | None = None,
) -> tuple[pd.DataFrame, str, str | None]:
    """Hourly where the plan allows, else daily: (frame, served window, fallback reason or None).

    Only NotEntitledError (403: the plan lacks the hourly window) falls back; a rejected token
    (NoAccessError) or any other failure propagates, since the daily series would fail the same way.
    Daily rows served in place of hourly carry `is_fallback=True` (source stays "cryptoquant", window
    "day"). A metric published daily only (MVRV) is served daily with no fallback.
    """
    m = METRICS.get(metric)
    if m is None:
        raise ValueError(f"unknown CryptoQuant metric {metric!r}; known: {sorted(METRICS)}")
    if "hour" not in m.windows:
        return fetch_metric(http, metric, start, end, window="day", partition=partition,
                            ingested_at=ingested_at, short=short), "day", None
    try:
        frame = fetch_metric(http, metric, start, end, window="hour", partition=partition,
                             ingested_at=ingested_at, short=short)
        return frame, "hour", None
    except NotEntitledError as exc:
        reason = str(exc)  # already redacted by VendorHTTP
    log.warning("cryptoquant %s: hourly not in the plan, serving daily instead (%s)", metric, reason)
    frame = fetch_metric(http, metric, start, end, window="day", partition=partition,
                         ingested_at=ingested_at, short=short)
    frame["is_fallback"] = True
    return frame, "day", reason


@dataclass
class MetricsFetch:
    frame: pd.DataFrame  # all metrics, long
    served: dict[str, str]  # metric -> "hour" | "day"
    fallbacks: dict[str, str]  # metric -> reason, for those served daily in place of hourly
    short_pages: int = 0  # pages asked again because they held fewer rows than their range
    short_pages_recovered: int = 0  # of them, pages whose later answer held rows the first lacked


def fetch_metrics(
    http: VendorHTTP,
    start: datetime | date,
    end: datetime | date,
    metrics: list[str] | tuple[str, ...] | None = None,
    partition: str | None = None,
    *,
    ingested_at: datetime | None = None,
) -> MetricsFetch:
    """`fetch_with_fallback` for several metrics (default: all of METRICS) into one long frame."""
    ingested_at = ingested_at or datetime.now(timezone.utc)
    frames, served, fallbacks, short = [], {}, {}, ShortPages()
    for metric in metrics or list(METRICS):
        frame, window, reason = fetch_with_fallback(http, metric, start, end, partition,
                                                    ingested_at=ingested_at, short=short)
        frames.append(frame)
        served[metric] = window
        if reason is not None:
            fallbacks[metric] = reason
    frame = pd.concat(frames, ignore_index=True) if frames else empty_frame()
    if short.short_pages:
        log.info("cryptoquant %s: %d short pages asked again, %d of them recovered rows, the rest kept as the "
                 "series' real rows", partition or "", short.short_pages, short.short_pages_recovered)
    return MetricsFetch(frame=frame[COLUMNS], served=served, fallbacks=fallbacks,
                        short_pages=short.short_pages, short_pages_recovered=short.short_pages_recovered)


def probe(http: VendorHTTP, endpoint: str) -> None:
    """One cheap request (the latest row) to an endpoint family and window, e.g.
    "exchange_flows_hour"; raises the VendorError of the failure (NotEntitledError while the plan
    lacks it, NoAccessError for a rejected token), returns None when it answers well."""
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown CryptoQuant endpoint {endpoint!r}; known: {sorted(ENDPOINTS)}")
    metric, window = ENDPOINTS[endpoint]
    m = METRICS[metric]
    payload = http.get_json(m.path, {**m.params, "window": window, "limit": 1},
                            endpoint=m.endpoint(window), partition=None)
    far = (datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(2200, 1, 1, tzinfo=timezone.utc))
    parse_page(payload, metric=metric, window=window, bounds=far, partition=None)


def empty_frame() -> pd.DataFrame:
    return _to_frame([], "", "day", None, datetime.now(timezone.utc))


def _to_frame(rows, metric: str, window: str, partition: str | None, ingested_at) -> pd.DataFrame:
    raw = pd.DataFrame(rows, columns=["ts", "value"])
    raw["ts"] = pd.to_datetime(raw["ts"], utc=True)
    # Identical repeats (a retried page, a vendor's duplicate row) collapse; conflicting ones fail.
    raw = raw.drop_duplicates()
    if raw["ts"].duplicated().any():
        ts = raw.loc[raw["ts"].duplicated(), "ts"].iloc[0]
        raise MalformedPayloadError(
            f"two different values for {ts.isoformat()}", vendor=VENDOR,
            endpoint=METRICS[metric].endpoint(window), partition=partition,
        )
    raw = raw.sort_values("ts", kind="stable").reset_index(drop=True)
    frame = pd.DataFrame(
        {
            "ts": raw["ts"].astype("datetime64[ns, UTC]"),
            "metric": pd.Series([metric] * len(raw), dtype="object"),
            "value": raw["value"].astype("float64"),
            "window": pd.Series([window] * len(raw), dtype="object"),
            "is_fallback": pd.Series([False] * len(raw), dtype="bool"),
            "source": pd.Series([SOURCE] * len(raw), dtype="object"),
            "ingested_at": pd.Series([pd.Timestamp(ingested_at).tz_convert("UTC")] * len(raw),
                                     dtype="datetime64[ns, UTC]"),
        }
    )
    return frame[COLUMNS]


__all__ = [
    "COLUMNS", "ENDPOINTS", "METRICS", "MAX_LIMIT", "Metric", "MetricsFetch", "ShortPages", "rows_due",
    "fetch_metric", "fetch_metrics", "fetch_with_fallback", "make_http", "parse_page", "probe",
    "request_windows",
]
