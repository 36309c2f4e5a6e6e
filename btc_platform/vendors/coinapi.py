"""CoinAPI market data: OHLCV history and perpetual funding rates (metrics API).

Endpoints (https://rest.coinapi.io, auth header `X-CoinAPI-Key`):

- `GET /v1/ohlcv/{symbol_id}/history?period_id&time_start&time_end&limit`: a JSON array of
  `{time_period_start, time_period_end, time_open, time_close, price_open, price_high, price_low,
  price_close, volume_traded, trades_count}`, times as ISO 8601 with 7 fractional digits, oldest
  first; `time_end` is exclusive; `limit` is 1..100000 (default 100).
- `GET /v1/metrics/symbol/history?metric_id=DERIVATIVES_FUNDING_RATE_CURRENT&symbol_id&period_id
  &time_start&time_end&limit`: per period `{time_period_start, time_period_end, time_open,
  time_close, first, last, min, max, count, sum}` (the spec's example; its schema also names a
  `{time, value}` form, which is accepted too). The funding rate of a period is its `last` value,
  so it is only known at the period's end (`ts + period`): features must shift it.

Paging follows the time cursor, not the page length: a request covers [cursor, end) with `limit`,
and the next one starts at the page's last `time_period_start` + one period, until the cursor
reaches `end` or the vendor has nothing more (550 or an empty page). A short page (fewer rows than
the periods begun in its window, and than `limit`) may be a dropped page tail with status 200: it is
asked for again once, and the rows of both answers are kept (a vendor drops rows, it does not invent
them; two different rows for one period still fail).

Statuses (CoinAPI docs): 400 bad request, 401 key wrong or missing (no_access), 403 the key lacks
privileges (no_access; on the metrics endpoint: not_entitled), 404 on the metrics endpoint when
the plan lacks it (not_entitled), 429 rate limited, 550 "No data -- You requested specific single
item that we don't have at this moment": not an entitlement problem, so a fetch answers an empty
frame with `no_data=True` instead of failing. Error bodies are `{"error": ...}` (a real 400),
`{"message": ...}` (older docs) or empty (a real 500); `error_message` reads all three.

Credits: every response may carry `x-ratelimit-limit`, `-remaining`, `-used`, `-request-cost`
(a rolling 24 h quota of request credits; one credit per 100 items when `limit` is used). The
client records the last values it saw and, once `remaining` reaches 0, waits for the reset before
the next request: until `x-ratelimit-reset` when the vendor sends it (older docs; ISO 8601 or
seconds), otherwise `quota_recheck_s` after the exhausted answer. A wait longer than
`quota_wait_max_s` is not slept: the request fails at once with `QuotaExhaustedError` (a
`RateLimitedError`, status "rate_limited", not retried in-process).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import httpx
import numpy as np
import pandas as pd

from btc_platform.vendors.errors import (
    NoAccessError,
    NoCredentialsError,
    NotEntitledError,
    MalformedPayloadError,
    RateLimitedError,
    VendorError,
)
from btc_platform.vendors.http import VendorHTTP

VENDOR = "coinapi"
OHLCV_ENDPOINT = "/v1/ohlcv/{symbol_id}/history"
FUNDING_ENDPOINT = "/v1/metrics/symbol/history"
# Endpoint names (the status table and the restoration sensor's probe) -> the vendor's path.
ENDPOINTS = {"ohlcv_history": OHLCV_ENDPOINT, "funding_rate": FUNDING_ENDPOINT}

FUNDING_METRIC_ID = "DERIVATIVES_FUNDING_RATE_CURRENT"
FUNDING_PERIOD_ID = "8HRS"  # Binance USDT-M perpetuals settle funding every 8 h (00, 08, 16 UTC)
MAX_LIMIT = 100_000
DEFAULT_PAGE_LIMIT = 10_000
# CoinAPI documents no per-second REST limit, only a daily credit quota (headers above) and a
# concurrency limit (1 on the recorded plan); stay polite. Override with rate_per_s / burst.
RATE_LIMIT_PER_S = 10.0
RATE_LIMIT_BURST = 10

# Our product id -> CoinAPI symbol_id.
SPOT_SYMBOLS = {
    "BTC-USD": "COINBASE_SPOT_BTC_USD",
    "ETH-USD": "COINBASE_SPOT_ETH_USD",
    "SOL-USD": "COINBASE_SPOT_SOL_USD",
}
PERP_SYMBOLS = {
    "BTC-USDT-PERP": "BINANCEFTS_PERP_BTC_USDT",
    "ETH-USDT-PERP": "BINANCEFTS_PERP_ETH_USDT",
    "SOL-USDT-PERP": "BINANCEFTS_PERP_SOL_USDT",
}
# First UTC day the platform ingests per symbol_id (perpetual listings; SOL from 2021-06 as elsewhere).
SYMBOL_START_DATES = {
    "COINBASE_SPOT_BTC_USD": date(2018, 11, 10),
    "COINBASE_SPOT_ETH_USD": date(2018, 11, 10),
    "COINBASE_SPOT_SOL_USD": date(2021, 6, 1),
    "BINANCEFTS_PERP_BTC_USDT": date(2019, 9, 9),
    "BINANCEFTS_PERP_ETH_USDT": date(2019, 11, 27),
    "BINANCEFTS_PERP_SOL_USDT": date(2021, 6, 1),
}
_PRODUCT_OF = {v: k for k, v in {**SPOT_SYMBOLS, **PERP_SYMBOLS}.items()}

OHLCV_COLUMNS = [
    "ts", "symbol", "symbol_id", "open", "high", "low", "close", "volume", "trades_count", "source",
    "ingested_at",
]
FUNDING_COLUMNS = ["ts", "symbol", "symbol_id", "funding_rate", "source", "ingested_at"]
_OHLCV_FIELDS = {
    "price_open": "open",
    "price_high": "high",
    "price_low": "low",
    "price_close": "close",
    "volume_traded": "volume",
}
_PERIOD_UNITS = {"SEC": 1, "MIN": 60, "HRS": 3600, "DAY": 86_400}

log = logging.getLogger("btc_platform.vendors.coinapi")


class NoDataError(VendorError):
    """CoinAPI 550: the vendor has no data for this request (not a plan or key problem).
    The fetch functions turn it into an empty frame with `no_data=True`."""

    status = "no_data"


class QuotaExhaustedError(RateLimitedError):
    """The credit quota is spent (`x-ratelimit-remaining` 0) and its reset is further away than
    the client may wait: fail now (status rate_limited) rather than burn retries on certain 429s."""

    retryable = False


def period_seconds(period_id: str) -> int:
    """'1HRS' -> 3600. Months and years have no fixed length and are refused."""
    pid = period_id.strip().upper()
    for unit, seconds in _PERIOD_UNITS.items():
        if pid.endswith(unit) and pid[: -len(unit)].isdigit() and int(pid[: -len(unit)]) > 0:
            return int(pid[: -len(unit)]) * seconds
    raise ValueError(f"period_id {period_id!r} is not a fixed-length CoinAPI period (e.g. 1MIN, 1HRS, 8HRS, 1DAY)")


def format_time(t: datetime) -> str:
    """CoinAPI input time (UTC, whole seconds), as the recorded requests send it."""
    return _utc(t).strftime("%Y-%m-%dT%H:%M:%S")


def _utc(t: datetime) -> datetime:
    if t.tzinfo is None:
        return t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc)


# -- HTTP with the credit quota ----------------------------------------------------------------
@dataclass
class RateLimitState:
    """The last `x-ratelimit-*` values seen (None: never sent; CoinAPI omits some at times)."""

    limit: int | None = None
    remaining: int | None = None
    used: int | None = None
    request_cost: int | None = None
    reset_at: datetime | None = None
    seen_at: float | None = None  # time.monotonic() of the response that carried them


def _int_header(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def parse_reset(value: str | None, now: datetime | None = None) -> datetime | None:
    """`x-ratelimit-reset` as ISO 8601, unix seconds, or seconds from now."""
    if not value:
        return None
    now = now or datetime.now(timezone.utc)
    try:
        number = float(value)
    except ValueError:
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, TypeError):
            return None
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return stamp.to_pydatetime()
    if number > 1e9:
        return datetime.fromtimestamp(number, timezone.utc)
    return now + timedelta(seconds=max(0.0, number))


@dataclass
class CoinAPIHTTP(VendorHTTP):
    """VendorHTTP that reads CoinAPI's credit headers from every response and respects them."""

    quota_wait_max_s: float = 300.0
    quota_recheck_s: float = 60.0
    quota_reset_margin_s: float = 0.05  # clocks differ: wake a little after the announced reset

    def __post_init__(self):
        super().__post_init__()
        self.rate_limit = RateLimitState()
        self.quota_waits = 0
        self.quota_waited_s = 0.0
        self._quota_lock = threading.Lock()
        self._client.event_hooks = {"request": [], "response": [self._read_rate_headers]}

    def _read_rate_headers(self, response: httpx.Response) -> None:
        h = response.headers
        values = {
            "limit": _int_header(h.get("x-ratelimit-limit")),
            "remaining": _int_header(h.get("x-ratelimit-remaining")),
            "used": _int_header(h.get("x-ratelimit-used")),
            "request_cost": _int_header(h.get("x-ratelimit-request-cost")),
            "reset_at": parse_reset(h.get("x-ratelimit-reset")),
        }
        if all(v is None for v in values.values()):
            return
        with self._quota_lock:
            for name, value in values.items():
                if value is not None:
                    setattr(self.rate_limit, name, value)
            if values["remaining"] is not None and values["reset_at"] is None:
                self.rate_limit.reset_at = None  # a reset seen earlier no longer applies
            self.rate_limit.seen_at = time.monotonic()

    def quota_wait_s(self) -> float:
        """Seconds to wait before the next request (0 while credits remain or none were reported)."""
        with self._quota_lock:
            st = self.rate_limit
            if st.remaining is None or st.remaining > 0:
                return 0.0
            if st.reset_at is not None:
                until = (st.reset_at - datetime.now(timezone.utc)).total_seconds()
                return max(0.0, until + self.quota_reset_margin_s)
            return max(0.0, (st.seen_at or 0.0) + self.quota_recheck_s - time.monotonic())

    def _respect_quota(self, endpoint: str, partition: str | None) -> None:
        wait = self.quota_wait_s()
        if wait <= 0:
            return
        st = self.rate_limit
        used = (f"{st.used if st.used is not None else '?'} of {st.limit} credits used" if st.limit is not None
                else "no credits remaining")
        if wait > self.quota_wait_max_s:
            raise self._error(
                QuotaExhaustedError,
                f"request quota exhausted ({used}); reset in {wait:.0f}s exceeds the wait budget "
                f"of {self.quota_wait_max_s:g}s",
                endpoint=endpoint,
                partition=partition,
                retry_after=wait,
            )
        log.warning("%s request quota exhausted (%s); waiting %.2fs for the reset", self.vendor, used, wait)
        time.sleep(wait)
        with self._quota_lock:
            self.quota_waits += 1
            self.quota_waited_s += wait
            self.rate_limit.remaining = None  # the next answer says where we stand

    def _get_once(self, path, params, *, endpoint, partition) -> Any:
        self._respect_quota(endpoint, partition)
        return super()._get_once(path, params, endpoint=endpoint, partition=partition)


def make_http(base_url: str, api_key: str | None, **overrides) -> CoinAPIHTTP:
    """A CoinAPI client: key in `X-CoinAPI-Key` (and redacted everywhere), 550 -> NoDataError,
    404 -> NotEntitledError. No key configured -> NoCredentialsError (the vendor is skipped)."""
    if not api_key:
        raise NoCredentialsError("COINAPI_KEY is not configured", vendor=VENDOR, endpoint="*")
    kw: dict[str, Any] = dict(
        rate_per_s=RATE_LIMIT_PER_S,
        burst=RATE_LIMIT_BURST,
        headers={"X-CoinAPI-Key": api_key, "Accept": "application/json"},
        secrets=(api_key,),
        status_errors={404: NotEntitledError, 550: NoDataError},
    )
    kw.update(overrides)
    return CoinAPIHTTP(vendor=VENDOR, base_url=base_url, **kw)


# -- parsing -----------------------------------------------------------------------------------
def _malformed(why: str, endpoint: str, partition: str | None) -> MalformedPayloadError:
    return MalformedPayloadError(why, vendor=VENDOR, endpoint=endpoint, partition=partition)


def _rows_frame(payload, required: list[str], endpoint: str, partition: str | None) -> pd.DataFrame:
    if not isinstance(payload, list):
        raise _malformed(f"expected a JSON array, got {type(payload).__name__}", endpoint, partition)
    bad = next((row for row in payload if not isinstance(row, dict)), None)
    if bad is not None:
        raise _malformed(f"rows must be JSON objects; got {str(bad)[:80]}", endpoint, partition)
    raw = pd.DataFrame.from_records(payload, columns=None) if payload else pd.DataFrame(columns=required)
    missing = [c for c in required if c not in raw.columns]
    if missing:
        raise _malformed(f"rows lack field(s) {', '.join(missing)}", endpoint, partition)
    nulls = [c for c in required if raw[c].isna().any()]
    if nulls:
        raise _malformed(f"rows hold null {', '.join(nulls)}", endpoint, partition)
    return raw


def _times(values: pd.Series, name: str, endpoint: str, partition: str | None) -> pd.Series:
    if not all(isinstance(v, str) for v in values):
        raise _malformed(f"{name} must be ISO 8601 strings", endpoint, partition)
    try:
        return pd.to_datetime(values, format="ISO8601", utc=True)
    except (ValueError, TypeError) as e:
        raise _malformed(f"unparsable {name}: {str(e).splitlines()[0][:120]}", endpoint, partition) from None


def _numbers(values: pd.Series, name: str, endpoint: str, partition: str | None) -> np.ndarray:
    ok = values.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool))
    if not ok.all():
        raise _malformed(f"{name} holds non-numeric values ({str(values[~ok].iloc[0])[:40]!r})", endpoint, partition)
    arr = values.to_numpy(dtype="float64")
    if not np.isfinite(arr).all():
        raise _malformed(f"{name} holds non-finite values", endpoint, partition)
    return arr


def _check_periods(
    start: pd.Series, end: pd.Series | None, period_s: int, window: tuple[datetime, datetime],
    endpoint: str, partition: str | None, *, aligned: bool = True,
) -> None:
    if start.empty:
        return
    secs = start.astype("int64") // 10**9
    if aligned and ((start.astype("int64") % 10**9).any() or (secs % period_s).any()):
        raise _malformed(f"time_period_start is not aligned to the {period_s}s period", endpoint, partition)
    if end is not None and ((end - start).dt.total_seconds() != period_s).any():
        raise _malformed(f"time_period_end - time_period_start is not the requested {period_s}s", endpoint, partition)
    lo, hi = pd.Timestamp(window[0]), pd.Timestamp(window[1])
    outside = (start < lo) | (start >= hi)
    if outside.any():
        first = start[outside].iloc[0]
        raise _malformed(
            f"row at {first.isoformat()} lies outside the requested window {lo:%FT%TZ}..{hi:%FT%TZ}",
            endpoint, partition,
        )


def parse_ohlcv(
    payload, *, period_id: str, window: tuple[datetime, datetime], partition: str | None = None
) -> pd.DataFrame:
    """Validate one OHLCV page: columns ts, open, high, low, close, volume, trades_count (as sent)."""
    endpoint = OHLCV_ENDPOINT
    period_s = period_seconds(period_id)
    raw = _rows_frame(payload, ["time_period_start", "time_period_end", *_OHLCV_FIELDS, "trades_count"],
                      endpoint, partition)
    ts = _times(raw["time_period_start"], "time_period_start", endpoint, partition)
    ts_end = _times(raw["time_period_end"], "time_period_end", endpoint, partition)
    window = (_utc(window[0]), _utc(window[1]))
    _check_periods(ts, ts_end, period_s, window, endpoint, partition)
    out = pd.DataFrame({"ts": ts})
    for src, dst in _OHLCV_FIELDS.items():
        out[dst] = _numbers(raw[src], src, endpoint, partition)
    trades = _numbers(raw["trades_count"], "trades_count", endpoint, partition)
    if (trades != np.round(trades)).any() or (trades < 0).any():
        raise _malformed("trades_count holds non-integer or negative values", endpoint, partition)
    out["trades_count"] = pd.array(trades.astype("int64"), dtype="Int64")
    return out


def parse_metric(
    payload, *, period_id: str, window: tuple[datetime, datetime], partition: str | None = None,
    endpoint: str = FUNDING_ENDPOINT,
) -> pd.DataFrame:
    """Validate one metrics page: columns ts, value (the period's `last`, or `value` in the
    schema's `{time, value}` form)."""
    period_s = period_seconds(period_id)
    window = (_utc(window[0]), _utc(window[1]))
    first = payload[0] if isinstance(payload, list) and payload else None
    if isinstance(first, dict) and "time_period_start" not in first and "time" in first:
        raw = _rows_frame(payload, ["time", "value"], endpoint, partition)
        ts = _times(raw["time"], "time", endpoint, partition)
        _check_periods(ts, None, period_s, window, endpoint, partition, aligned=False)  # a recording time
        return pd.DataFrame({"ts": ts, "value": _numbers(raw["value"], "value", endpoint, partition)})
    raw = _rows_frame(payload, ["time_period_start", "time_period_end", "last"], endpoint, partition)
    ts = _times(raw["time_period_start"], "time_period_start", endpoint, partition)
    ts_end = _times(raw["time_period_end"], "time_period_end", endpoint, partition)
    _check_periods(ts, ts_end, period_s, window, endpoint, partition)
    return pd.DataFrame({"ts": ts, "value": _numbers(raw["last"], "last", endpoint, partition)})


def _dedupe(frame: pd.DataFrame, endpoint: str, partition: str | None) -> pd.DataFrame:
    """Identical repeats collapse; two different rows for one period fail; oldest first."""
    frame = frame.drop_duplicates()
    dup = frame["ts"].duplicated()
    if dup.any():
        raise _malformed(f"two different rows for {frame.loc[dup, 'ts'].iloc[0].isoformat()}", endpoint, partition)
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)


# -- fetching ----------------------------------------------------------------------------------
@dataclass
class Fetch:
    frame: pd.DataFrame
    pages: int
    requests: int
    no_data: bool = False  # the vendor has nothing for the window (550, or an empty answer)
    notes: list[str] = field(default_factory=list)


def _paged(
    http: VendorHTTP, path: str, base_params: dict, parse, *, start: datetime, end: datetime,
    period_s: int, page_limit: int, endpoint: str, partition: str | None,
) -> tuple[list[pd.DataFrame], int, list[str]]:
    """Pages of [start, end): (parsed pages, pages requested, the vendor's 550 messages)."""
    if not 1 <= page_limit <= MAX_LIMIT:
        raise ValueError(f"page_limit must be 1..{MAX_LIMIT}, not {page_limit}")
    start, end = _utc(start), _utc(end)
    pages: list[pd.DataFrame] = []
    requested = 0
    no_data: list[str] = []

    def ask(cursor: datetime):
        nonlocal requested
        params = {**base_params, "time_start": format_time(cursor), "time_end": format_time(end), "limit": page_limit}
        requested += 1
        try:
            return http.get_json(path, params, endpoint=endpoint, partition=partition,  # parsed inside the retry loop
                                 parse=lambda payload: parse(payload, window=(cursor, end)))
        except NoDataError as e:
            no_data.append(f"HTTP 550 from {format_time(cursor)}: {e.detail}")
            return None

    cursor = start
    while cursor < end:
        page = ask(cursor)
        if page is None or page.empty:
            break  # nothing (more) from the cursor on
        if len(page) < min(page_limit, _periods_begun(cursor, end, period_s)):
            again = ask(cursor)
            if again is not None and not again.empty:
                page = pd.concat([page, again], ignore_index=True)
        pages.append(page)
        cursor = max(cursor, page["ts"].max().to_pydatetime() + timedelta(seconds=period_s))
    return pages, requested, no_data


def _periods_begun(cursor: datetime, end: datetime, period_s: int) -> int:
    """Periods from `cursor` to `end` that have begun by now (later ones cannot have rows yet)."""
    last = min(end, datetime.now(timezone.utc))
    return max(0, -(-int((last - cursor).total_seconds()) // period_s))


def _symbol_for(symbol_id: str, symbol: str | None) -> str:
    return symbol or _PRODUCT_OF.get(symbol_id, symbol_id)


def fetch_ohlcv(
    http: VendorHTTP,
    symbol_id: str,
    start: datetime,
    end: datetime,
    *,
    period_id: str = "1HRS",
    symbol: str | None = None,
    partition: str | None = None,
    page_limit: int = DEFAULT_PAGE_LIMIT,
    ingested_at: datetime | None = None,
) -> Fetch:
    """All OHLCV bars of [start, end) as the canonical frame, oldest first, one row per period.
    Periods without trades are absent (`include_empty_items=false`, the API's default)."""
    period_s = period_seconds(period_id)
    requests_before = http.requests_sent

    def parse(payload, window):
        return parse_ohlcv(payload, period_id=period_id, window=window, partition=partition)

    pages, requested, notes = _paged(
        http, f"/v1/ohlcv/{symbol_id}/history", {"period_id": period_id}, parse, start=start, end=end,
        period_s=period_s, page_limit=page_limit, endpoint=OHLCV_ENDPOINT, partition=partition,
    )
    bars = pd.concat(pages, ignore_index=True) if pages else parse_ohlcv([], period_id=period_id, window=(start, end))
    bars = _dedupe(bars, OHLCV_ENDPOINT, partition)
    frame = pd.DataFrame(
        {
            "ts": bars["ts"],
            "symbol": pd.Series([_symbol_for(symbol_id, symbol)] * len(bars), dtype="object"),
            "symbol_id": pd.Series([symbol_id] * len(bars), dtype="object"),
            **{c: bars[c].astype("float64") for c in ("open", "high", "low", "close", "volume")},
            "trades_count": bars["trades_count"].astype("Int64"),
            "source": pd.Series([VENDOR] * len(bars), dtype="object"),
            "ingested_at": pd.Series([pd.Timestamp(ingested_at or datetime.now(timezone.utc)).tz_convert("UTC")]
                                     * len(bars), dtype="datetime64[ns, UTC]"),
        }
    )[OHLCV_COLUMNS]
    frame["ts"] = frame["ts"].astype("datetime64[ns, UTC]")
    log.info("coinapi %s %s %s: %d pages, %d bars%s", symbol_id, period_id,
             partition or f"{start:%F}..{end:%F}", requested, len(frame), " (no data)" if frame.empty else "")
    return Fetch(frame=frame, pages=requested, requests=http.requests_sent - requests_before,
                 no_data=frame.empty, notes=notes)


def _not_entitled_on_403(fn):
    """On the metrics endpoint a 403 means the plan lacks metrics: not_entitled, not no_access."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except NoAccessError as e:
            if e.http_status != 403:
                raise
            raise NotEntitledError(e.detail, vendor=e.vendor, endpoint=e.endpoint, partition=e.partition,
                                   http_status=e.http_status) from None

    return wrapped


@_not_entitled_on_403
def fetch_funding_rates(
    http: VendorHTTP,
    symbol_id: str,
    start: datetime,
    end: datetime,
    *,
    symbol: str | None = None,
    partition: str | None = None,
    period_id: str = FUNDING_PERIOD_ID,
    page_limit: int = DEFAULT_PAGE_LIMIT,
    ingested_at: datetime | None = None,
) -> Fetch:
    """Funding rates of a perpetual for [start, end), one row per 8 h period labelled by its start.
    A plan without the metrics API raises NotEntitledError (404 or 403)."""
    period_s = period_seconds(period_id)
    requests_before = http.requests_sent

    def parse(payload, window):
        return parse_metric(payload, period_id=period_id, window=window, partition=partition)

    pages, requested, notes = _paged(
        http, FUNDING_ENDPOINT, {"metric_id": FUNDING_METRIC_ID, "symbol_id": symbol_id, "period_id": period_id},
        parse, start=start, end=end, period_s=period_s, page_limit=page_limit, endpoint=FUNDING_ENDPOINT,
        partition=partition,
    )
    rows = pd.concat(pages, ignore_index=True) if pages else pd.DataFrame(
        {"ts": pd.Series([], dtype="datetime64[ns, UTC]"), "value": pd.Series([], dtype="float64")})
    rows = _dedupe(rows, FUNDING_ENDPOINT, partition)
    frame = pd.DataFrame(
        {
            "ts": rows["ts"].astype("datetime64[ns, UTC]"),
            "symbol": pd.Series([_symbol_for(symbol_id, symbol)] * len(rows), dtype="object"),
            "symbol_id": pd.Series([symbol_id] * len(rows), dtype="object"),
            "funding_rate": rows["value"].astype("float64"),
            "source": pd.Series([VENDOR] * len(rows), dtype="object"),
            "ingested_at": pd.Series([pd.Timestamp(ingested_at or datetime.now(timezone.utc)).tz_convert("UTC")]
                                     * len(rows), dtype="datetime64[ns, UTC]"),
        }
    )[FUNDING_COLUMNS]
    log.info("coinapi %s funding %s: %d pages, %d rates%s", symbol_id, partition or f"{start:%F}..{end:%F}",
             requested, len(frame), " (no data)" if frame.empty else "")
    return Fetch(frame=frame, pages=requested, requests=http.requests_sent - requests_before,
                 no_data=frame.empty, notes=notes)


# -- probes for the restoration sensor ----------------------------------------------------------
def probe(http: VendorHTTP, endpoint: str, *, symbol_id: str | None = None, now: datetime | None = None) -> None:
    """One small request (limit=1, one credit) on an endpoint; raises its VendorError on failure.
    A 550 counts as success: the key and the plan reach the endpoint, there is just no item."""
    now = _utc(now or datetime.now(timezone.utc))
    day_end = now.replace(hour=0, minute=0, second=0, microsecond=0)
    day_start = day_end - timedelta(days=1)
    if endpoint == "ohlcv_history":
        sid = symbol_id or SPOT_SYMBOLS["BTC-USD"]
        path, params = f"/v1/ohlcv/{sid}/history", {"period_id": "1DAY"}
    elif endpoint == "funding_rate":
        sid = symbol_id or PERP_SYMBOLS["BTC-USDT-PERP"]
        path = FUNDING_ENDPOINT
        params = {"metric_id": FUNDING_METRIC_ID, "symbol_id": sid, "period_id": FUNDING_PERIOD_ID}
    else:
        raise ValueError(f"unknown CoinAPI endpoint {endpoint!r}; expected one of {sorted(ENDPOINTS)}")
    params.update(time_start=format_time(day_start), time_end=format_time(day_end), limit=1)
    get = _not_entitled_on_403(http.get_json) if endpoint == "funding_rate" else http.get_json
    try:
        get(path, params, endpoint=ENDPOINTS[endpoint], partition=None)
    except NoDataError:
        return
