"""Alpha Vantage daily market and macro series: `GET /query?function=...&apikey=KEY&...`.

Functions used: `TIME_SERIES_DAILY` (SPY, QQQ), `FX_DAILY` (EUR/USD, USD/JPY), `DIGITAL_CURRENCY_DAILY`
(BTC in USD), `TREASURY_YIELD` (daily 10year, 2year), `WTI` and `BRENT` (daily). `SERIES` maps our series
names to a function and its parameters; every series comes back as one long canonical frame
(`FRAME_COLUMNS`).

Alpha Vantage answers almost everything with HTTP 200, errors included, so the body decides:

- `{"Note": "... 5 calls per minute ..."}` (older) or an `Information` asking to spread requests out:
  a short throttle, retried after `throttle_wait_s` (60 s) at most `throttle_attempts` times;
- `{"Information": "... rate limit is 25 requests per day ..."}`: the daily cap. Not retried: it raises
  `DailyLimitError` (a `RateLimitedError`, status "rate_limited") at once and marks the budget spent;
- `{"Information": "... premium endpoint ..."}` (or a premium parameter value): `NotEntitledError`;
- `{"Error Message": "the parameter apikey is invalid or missing ..."}`: `NoAccessError`;
  any other `Error Message` ("Invalid API call ..."): `BadRequestError`.

The free plan allows 25 requests a day: `RequestBudget` counts them (the caller persists it with
`to_dict`/`from_dict`), the client refuses to send a request the budget cannot pay for, and
`plan_requests` fits a refresh into what is left, reporting what it deferred.

Short answers: a `compact` answer holds the latest COMPACT_POINTS points, and any answer should
reach back to the `start` a caller asks for; one that does neither may have lost its oldest rows (a
dropped body tail, status 200). It is asked for again until it is whole, from the same budget, at most
`SHORT_PAGE_ASKS` requests in all, and the answers are merged (two different values for one date still
fail). An answer still short after that, two more agreeing with it, is the series' real history (one
listed after `start`). A `full` answer fetched without `start` has
no such signal: the vendor sends no row count.

The key travels in the `apikey` query parameter: it is redacted from error messages (the daily-cap
body quotes it), from our log lines, and from httpx's request log line, whose URL carries it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from btc_platform.vendors.answers import union_answers
from btc_platform.vendors.errors import (
    BadRequestError,
    MalformedPayloadError,
    NoAccessError,
    NoCredentialsError,
    NotEntitledError,
    RateLimitedError,
    VendorError,
)
from btc_platform.vendors.http import VendorHTTP

VENDOR = "alphavantage"
PATH = "/query"
# Free plan: 5 calls per minute (the documented per-minute limit) and 25 requests per day.
CALLS_PER_MINUTE = 5
FREE_REQUESTS_PER_DAY = 25
# `outputsize=compact` answers the latest 100 points; a series last loaded longer ago than this many
# calendar days needs `full` to close the gap (100 weekdays span ~140 days; 100 keeps a margin).
COMPACT_POINTS = 100
COMPACT_SAFE_DAYS = 100
SHORT_PAGE_ASKS = 3  # requests per short answer at most: the first and two that must agree with it

FRAME_COLUMNS = [
    "ts", "series", "function", "open", "high", "low", "close", "volume", "value", "source", "ingested_at",
]
_FLOAT_COLUMNS = ["open", "high", "low", "close", "volume", "value"]

log = logging.getLogger("btc_platform.vendors.alphavantage")


@dataclass(frozen=True)
class SeriesSpec:
    function: str
    params: dict[str, str]
    kind: str  # "ohlcv" (open..volume), "ohlc" (no volume) or "value" (single value per date)
    calendar: str  # "weekdays" or "daily": which days the vendor publishes
    description: str = ""

    @property
    def has_outputsize(self) -> bool:
        """Only the price time series take `outputsize`; the others always answer their full history."""
        return self.function in _OUTPUTSIZE_FUNCTIONS


_OUTPUTSIZE_FUNCTIONS = {"TIME_SERIES_DAILY", "FX_DAILY"}

SERIES: dict[str, SeriesSpec] = {
    "SPY": SeriesSpec("TIME_SERIES_DAILY", {"symbol": "SPY"}, "ohlcv", "weekdays", "SPDR S&P 500 ETF"),
    "QQQ": SeriesSpec("TIME_SERIES_DAILY", {"symbol": "QQQ"}, "ohlcv", "weekdays", "Invesco QQQ (Nasdaq-100)"),
    "EURUSD": SeriesSpec("FX_DAILY", {"from_symbol": "EUR", "to_symbol": "USD"}, "ohlc", "weekdays", "EUR/USD"),
    "USDJPY": SeriesSpec("FX_DAILY", {"from_symbol": "USD", "to_symbol": "JPY"}, "ohlc", "weekdays", "USD/JPY"),
    "BTCUSD": SeriesSpec(
        "DIGITAL_CURRENCY_DAILY", {"symbol": "BTC", "market": "USD"}, "ohlcv", "daily", "Bitcoin in USD"
    ),
    "US10Y": SeriesSpec(
        "TREASURY_YIELD", {"interval": "daily", "maturity": "10year"}, "value", "weekdays", "10-year yield, %"
    ),
    "US2Y": SeriesSpec(
        "TREASURY_YIELD", {"interval": "daily", "maturity": "2year"}, "value", "weekdays", "2-year yield, %"
    ),
    "WTI": SeriesSpec("WTI", {"interval": "daily"}, "value", "weekdays", "WTI crude, USD per barrel"),
    "BRENT": SeriesSpec("BRENT", {"interval": "daily"}, "value", "weekdays", "Brent crude, USD per barrel"),
}

# The endpoint names used in errors and in the vendor status table: Alpha Vantage's functions.
ENDPOINTS: tuple[str, ...] = tuple(dict.fromkeys(spec.function for spec in SERIES.values()))

# Fields each function's records must carry (after normalising "1a. open (USD)" to "open").
_REQUIRED = {
    "TIME_SERIES_DAILY": ("open", "high", "low", "close", "volume"),
    "FX_DAILY": ("open", "high", "low", "close"),
    "DIGITAL_CURRENCY_DAILY": ("open", "high", "low", "close", "volume"),
}


# -- errors ----------------------------------------------------------------------------------------
class DailyLimitError(RateLimitedError):
    """The day's requests are used up (the vendor's daily cap, or our own budget): waiting minutes
    cannot help, so it is never retried. Status stays "rate_limited". (Other rate-limit errors that
    must not be retried, e.g. a throttle that outlasted `throttle_attempts`, are RateLimitedError
    instances with `retryable = False`.)"""

    retryable = False


# -- daily request budget ----------------------------------------------------------------------------
def _utc_today() -> date:
    return datetime.now(timezone.utc).date()


@dataclass
class RequestBudget:
    """Requests the key may still send today (UTC). Every request sent counts, retries included.

    The caller persists it between runs (`to_dict` / `from_dict`); a new UTC day starts from zero.
    Thread-safe, so concurrent fetches can share one budget.
    """

    limit_per_day: int = FREE_REQUESTS_PER_DAY
    used_today: int = 0
    day: date | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.day, str):
            self.day = date.fromisoformat(self.day)
        if self.day is None:
            self.day = _utc_today()

    def _roll(self) -> None:
        today = _utc_today()
        if self.day != today:
            self.day, self.used_today = today, 0

    @property
    def remaining(self) -> int:
        with self._lock:
            self._roll()
            return max(0, self.limit_per_day - self.used_today)

    def can_spend(self, n: int = 1) -> bool:
        return self.remaining >= n

    def spend(self, n: int = 1) -> None:
        """Record n requests sent (recorded even past the limit: the count must stay true)."""
        with self._lock:
            self._roll()
            self.used_today += n

    def try_spend(self, n: int = 1) -> bool:
        """Spend n if the day still has them, atomically (threads sharing a budget cannot overshoot)."""
        with self._lock:
            self._roll()
            if self.limit_per_day - self.used_today < n:
                return False
            self.used_today += n
            return True

    def exhaust(self) -> None:
        """The vendor says the day's quota is gone: believe it until the next UTC day."""
        with self._lock:
            self._roll()
            self.used_today = max(self.used_today, self.limit_per_day)

    def to_dict(self) -> dict:
        with self._lock:
            return {"limit_per_day": self.limit_per_day, "used_today": self.used_today,
                    "day": self.day.isoformat()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "RequestBudget":
        d = dict(d or {})
        return cls(
            limit_per_day=int(d.get("limit_per_day", FREE_REQUESTS_PER_DAY)),
            used_today=int(d.get("used_today", 0)),
            day=d.get("day"),
        )


@dataclass(frozen=True)
class PlannedRequest:
    series: str
    outputsize: str  # "full" on first load (or after a long gap), else "compact"
    cost: int = 1


def plan_requests(
    series_list: Iterable[str | tuple[str, Any]] | Mapping[str, Any],
    budget: RequestBudget | None,
    *,
    reserve: int = 0,
    today: date | None = None,
) -> tuple[list[PlannedRequest], list[str]]:
    """Fit a refresh into the day's budget, in the order given (the first is the most important).

    Each item is a series name (never loaded: `full`), or `(name, last_loaded)` / a mapping
    `{name: last_loaded}` where last_loaded is None/False (never: `full`), True (`compact`), or the
    date of the last loaded point (`compact` unless older than COMPACT_SAFE_DAYS, then `full`).
    Functions without `outputsize` always answer everything and are planned as `full`.
    Every request costs 1; `reserve` keeps some requests back (e.g. for a throttle retry).
    Returns (planned, deferred series names).
    """
    items = list(series_list.items()) if isinstance(series_list, Mapping) else list(series_list)
    today = today or _utc_today()
    available = (budget.remaining if budget is not None else float("inf")) - reserve
    planned: list[PlannedRequest] = []
    deferred: list[str] = []
    seen: set[str] = set()
    for item in items:
        name, last = (item, None) if isinstance(item, str) else item
        spec = _spec(name)
        if name in seen:
            continue
        seen.add(name)
        if not spec.has_outputsize or last is None or last is False:
            size = "full"
        elif last is True:
            size = "compact"
        else:
            last_day = pd.Timestamp(last).date()
            size = "compact" if (today - last_day).days <= COMPACT_SAFE_DAYS else "full"
        request = PlannedRequest(name, size)
        if request.cost <= available:
            planned.append(request)
            available -= request.cost
        else:
            deferred.append(name)
    if deferred:
        log.info("alphavantage: %d requests planned, deferred for lack of budget: %s",
                 len(planned), ", ".join(deferred))
    return planned, deferred


# -- HTTP ------------------------------------------------------------------------------------------
@dataclass
class AlphaVantageHTTP(VendorHTTP):
    """VendorHTTP plus what Alpha Vantage needs: throttles and errors in 200 bodies, a daily budget."""

    throttle_wait_s: float = 60.0  # after a per-minute `Note` the minute has passed
    throttle_attempts: int = 3  # throttle bodies in a row before giving up on one request

    def query(
        self,
        params: Mapping[str, Any],
        *,
        endpoint: str,
        partition: str | None = None,
        budget: RequestBudget | None = None,
        parse=None,
    ) -> dict:
        """One logical request: retried on throttles and transient failures, each attempt paid from
        the budget before it is sent; the body is returned only when it is data (`parse(body)` when
        given, inside the loop, so a body that breaks the schema is fetched once more)."""
        throttles = [0]

        def attempt():
            payload = self._query_once(params, endpoint, partition, budget, throttles)
            return payload if parse is None else parse(payload)

        return self.with_retries(attempt)

    def _query_once(self, params, endpoint, partition, budget, throttles) -> dict:
        where = {"endpoint": endpoint, "partition": partition}
        if budget is not None:
            if not budget.try_spend(1):
                raise self._error(
                    DailyLimitError,
                    f"daily budget of {budget.limit_per_day} requests exhausted ({budget.used_today} used on "
                    f"{budget.day} UTC); nothing sent, retry after 00:00 UTC",
                    **where,
                )
        payload = self._get_once(PATH, params, **where)
        try:
            check_body(payload, endpoint=endpoint, partition=partition, throttle_wait_s=self.throttle_wait_s)
        except VendorError as e:
            # The vendor's words may quote the key (the daily-cap notice does): redact before raising.
            raise self._classified(e, budget, throttles, where) from None
        return payload

    def _classified(self, e: VendorError, budget, throttles, where) -> VendorError:
        detail, cls, retryable = e.detail, type(e), e.retryable
        if cls is DailyLimitError:
            if budget is not None:
                budget.exhaust()
        elif retryable and isinstance(e, RateLimitedError):
            throttles[0] += 1
            if throttles[0] >= self.throttle_attempts:
                detail, retryable = f"still throttled after {throttles[0]} attempts: {detail}", False
        out = self._error(cls, detail, http_status=e.http_status, retry_after=e.retry_after, **where)
        out.retryable = retryable
        return out


def make_http(base_url: str, api_key: str, **overrides) -> AlphaVantageHTTP:
    """The client for one key: 5 calls per minute (free plan), the key redacted everywhere."""
    settings = {"rate_per_s": CALLS_PER_MINUTE / 60.0, "burst": 1, "secrets": (api_key,) if api_key else ()}
    settings.update(overrides)
    return AlphaVantageHTTP(vendor=VENDOR, base_url=base_url, **settings)


# -- body classification -------------------------------------------------------------------------
_DATA_KEYS = ("data", "Realtime Currency Exchange Rate")
# "... our standard API rate limit is 25 requests per day ..." (not "... for the TIME_SERIES_DAILY endpoint")
_DAILY_CAP = re.compile(r"requests? per day|calls? per day|daily (?:rate )?limit")


def _has_data(payload: dict) -> bool:
    return any(k.startswith("Time Series") or k in _DATA_KEYS for k in payload)


def check_body(
    payload: Any, *, endpoint: str, partition: str | None = None, throttle_wait_s: float = 60.0
) -> None:
    """Raise the taxonomy's error for a body that is a throttle or an error rather than data.

    Bodies without data and without a known error key pass: parsing then fails as malformed.
    Messages are the vendor's own words; callers redact them (the daily-cap body quotes the key).
    """
    if not isinstance(payload, dict) or _has_data(payload):
        return
    where = {"vendor": VENDOR, "endpoint": endpoint, "partition": partition, "http_status": 200}
    if "Error Message" in payload:
        text = str(payload["Error Message"])
        if "apikey" in text.lower() or "api key" in text.lower():
            raise NoAccessError(text[:300], **where)
        raise BadRequestError(text[:300], **where)
    if "Note" in payload:
        # The per-minute throttle of the older plans ("5 calls per minute and 500 calls per day").
        raise RateLimitedError(f"throttled (per minute): {str(payload['Note'])[:300]}",
                               retry_after=throttle_wait_s, **where)
    if "Information" in payload:
        text = str(payload["Information"])
        low = text.lower()
        if "per second" in low or "per minute" in low or "spreading out" in low or "sparingly" in low:
            # A short throttle, even when the text also quotes the daily allowance.
            wait = 1.0 if "per second" in low else throttle_wait_s
            raise RateLimitedError(f"throttled: {text[:300]}", retry_after=wait, **where)
        if _DAILY_CAP.search(low):
            raise DailyLimitError(
                f"daily request limit reached, not retried until the next UTC day: {text[:300]}", **where
            )
        if "premium" in low:
            raise NotEntitledError(f"not in the plan: {text[:300]}", **where)
        # An unknown notice in place of data: most likely a limit; retrying at once will not help.
        notice = RateLimitedError(f"no data, vendor notice: {text[:300]}", **where)
        notice.retryable = False
        raise notice


# -- parsing ---------------------------------------------------------------------------------------
_FIELD = re.compile(r"^\s*\d+[a-z]?\.\s*(?P<name>.+?)\s*(?:\((?P<cur>[A-Za-z]{2,6})\))?\s*$")
_CANONICAL_FIELD = {"open": "open", "high": "high", "low": "low", "close": "close", "volume": "volume",
                    "price": "close"}


def _meta_value(meta: Any, suffix: str) -> str | None:
    if isinstance(meta, dict):
        for k, v in meta.items():
            if str(k).split(". ", 1)[-1].strip().lower() == suffix.lower():
                return str(v)
    return None


def _field_map(fields: Iterable[str], market: str | None) -> dict[str, str]:
    """Raw field -> canonical column. "1a. open (CNY)"/"1b. open (USD)" pick the market's currency
    (else USD); a "close" field wins over a "price" one."""
    options: dict[str, list[tuple[int, str]]] = {}
    currencies = [None, (market or "").upper() or None, "USD"]
    for raw in fields:
        m = _FIELD.match(str(raw))
        column = _CANONICAL_FIELD.get(m["name"].lower()) if m else None
        if column is None:
            continue
        cur = (m["cur"] or "").upper() or None
        rank = (m["name"].lower() == "price", currencies.index(cur) if cur in currencies else len(currencies))
        options.setdefault(column, []).append((rank, raw))
    return {min(opts)[1]: column for column, opts in options.items()}


def _timestamps(keys: list[str], tz: str | None, malformed) -> pd.DatetimeIndex:
    try:
        ts = pd.DatetimeIndex(pd.to_datetime(keys, format="ISO8601"))
    except (ValueError, TypeError) as e:
        raise malformed(f"dates that do not parse ({str(e)[:80]})") from None
    if ts.tz is None:
        dated_only = all(len(k.strip()) == 10 for k in keys)
        # A daily point is the UTC day of its date; intraday points are in the meta's time zone.
        zone = "UTC" if dated_only or not tz else tz
        ts = ts.tz_localize(zone, ambiguous=np.zeros(len(ts), bool), nonexistent="shift_forward")
    return ts.tz_convert("UTC").astype("datetime64[ns, UTC]")


def _frame(cols: dict[str, Any], n: int, *, series: str, function: str, ingested_at) -> pd.DataFrame:
    frame = pd.DataFrame({c: np.asarray(cols.get(c, np.full(n, np.nan)), dtype="float64")
                          for c in _FLOAT_COLUMNS}, index=range(n))
    frame.insert(0, "ts", pd.DatetimeIndex(cols["ts"]).astype("datetime64[ns, UTC]") if n else
                 pd.DatetimeIndex([], tz="UTC").astype("datetime64[ns, UTC]"))
    frame.insert(1, "series", pd.Series([series] * n, dtype="object"))
    frame.insert(2, "function", pd.Series([function] * n, dtype="object"))
    frame["source"] = pd.Series([VENDOR] * n, dtype="object")
    stamp = pd.Timestamp(ingested_at or datetime.now(timezone.utc))
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    frame["ingested_at"] = pd.Series([stamp] * n, dtype="datetime64[ns, UTC]")
    return frame[FRAME_COLUMNS]


def parse_payload(
    payload: Any,
    *,
    function: str,
    series: str,
    market: str | None = None,
    partition: str | None = None,
    ingested_at: datetime | None = None,
) -> pd.DataFrame:
    """A data body as the canonical frame, oldest first, one row per date.

    Handles the `Time Series ...` shapes (daily, FX, digital currency in both its current "1. open"
    and older "1a. open (USD)" fields, intraday), the `data` list of TREASURY_YIELD/WTI/BRENT ("."
    means no value that day: no row) and `Realtime Currency Exchange Rate`. Throttle and error
    bodies raise their taxonomy error; any other shape raises MalformedPayloadError.
    """

    def malformed(why: str) -> MalformedPayloadError:
        return MalformedPayloadError(why, vendor=VENDOR, endpoint=function, partition=partition)

    if not isinstance(payload, dict):
        raise malformed(f"expected a JSON object, got {type(payload).__name__}")
    check_body(payload, endpoint=function, partition=partition)
    kw = {"series": series, "function": function, "ingested_at": ingested_at}
    ts_keys = [k for k in payload if k.startswith("Time Series")]
    if ts_keys:
        return _parse_time_series(payload, ts_keys[0], market, malformed, **kw)
    if "data" in payload:
        return _parse_data_list(payload["data"], malformed, **kw)
    if "Realtime Currency Exchange Rate" in payload:
        return _parse_exchange_rate(payload["Realtime Currency Exchange Rate"], malformed, **kw)
    keys = ", ".join(sorted(map(str, payload))[:5]) or "none"
    raise malformed(f"no 'Time Series ...' or 'data' key in the body (keys: {keys})")


def _parse_time_series(payload, key, market, malformed, **kw) -> pd.DataFrame:
    function = kw["function"]
    records = payload[key]
    if not isinstance(records, dict):
        raise malformed(f"'{key}' must map dates to records, got {type(records).__name__}")
    bad = next((d for d, r in records.items() if not isinstance(r, dict)), None)
    if bad is not None:
        raise malformed(f"'{key}' record for {bad} is not an object")
    meta = payload.get("Meta Data")
    market = market or _meta_value(meta, "Market Code")
    if not records:
        return _frame({"ts": []}, 0, **kw)
    fields = dict.fromkeys(f for r in records.values() for f in r)
    mapping = _field_map(fields, market)
    present = set(mapping.values())
    required = _REQUIRED.get(function, ("close",))
    missing = [c for c in required if c not in present]
    if missing:
        raise malformed(f"records lack {', '.join(missing)} (fields: {', '.join(list(fields)[:8])})")
    keys = list(records)
    cols: dict[str, Any] = {}
    for raw, column in mapping.items():
        values = [records[k].get(raw) for k in keys]
        if any(v is None for v in values) and column in required:
            day = keys[next(i for i, v in enumerate(values) if v is None)]
            raise malformed(f"record for {day} lacks '{raw}'")
        numbers = pd.to_numeric(pd.Series(values, dtype="object"), errors="coerce").to_numpy("float64")
        wrong = ~np.isfinite(numbers) & pd.notna(pd.Series(values, dtype="object")).to_numpy()
        if wrong.any():
            i = int(np.flatnonzero(wrong)[0])
            raise malformed(f"non-numeric '{raw}' for {keys[i]}: {str(values[i])[:20]!r}")
        cols[column] = numbers
    ts = _timestamps(keys, _meta_value(meta, "Time Zone"), malformed)
    if ts.has_duplicates:
        raise malformed(f"two records for {ts[ts.duplicated()][0].isoformat()}")
    order = np.argsort(ts.asi8, kind="stable")
    cols = {c: v[order] for c, v in cols.items()}
    cols["value"] = cols["close"]
    cols["ts"] = ts[order]
    return _frame(cols, len(keys), **kw)


def _parse_data_list(rows, malformed, **kw) -> pd.DataFrame:
    if not isinstance(rows, list):
        raise malformed(f"'data' must be a list, got {type(rows).__name__}")
    bad = next((r for r in rows if not (isinstance(r, dict) and "date" in r and "value" in r)), None)
    if bad is not None:
        raise malformed(f"'data' rows must be {{'date', 'value'}}; got {str(bad)[:80]}")
    raw = pd.DataFrame({"date": [str(r["date"]) for r in rows], "value": [r["value"] for r in rows]},
                       dtype="object")
    raw = raw.drop_duplicates()
    if raw["date"].duplicated().any():
        raise malformed(f"two different values for {raw.loc[raw['date'].duplicated(), 'date'].iloc[0]}")
    missing = raw["value"].astype(str).str.strip().isin([".", ""])
    raw = raw[~missing]
    values = pd.to_numeric(raw["value"], errors="coerce").to_numpy("float64")
    if (~np.isfinite(values)).any():
        i = int(np.flatnonzero(~np.isfinite(values))[0])
        raise malformed(f"non-numeric value for {raw['date'].iloc[i]}: {str(raw['value'].iloc[i])[:20]!r}")
    ts = _timestamps(list(raw["date"]), None, malformed)
    order = np.argsort(ts.asi8, kind="stable")
    return _frame({"ts": ts[order], "value": values[order]}, len(raw), **kw)


def _parse_exchange_rate(record, malformed, **kw) -> pd.DataFrame:
    if not isinstance(record, dict):
        raise malformed("'Realtime Currency Exchange Rate' must be an object")
    rate, when = _meta_value(record, "Exchange Rate"), _meta_value(record, "Last Refreshed")
    if rate is None or when is None:
        raise malformed("exchange rate record lacks 'Exchange Rate' or 'Last Refreshed'")
    value = pd.to_numeric(pd.Series([rate]), errors="coerce").to_numpy("float64")
    if not np.isfinite(value).all():
        raise malformed(f"non-numeric exchange rate {rate[:20]!r}")
    ts = _timestamps([when], _meta_value(record, "Time Zone"), malformed)
    return _frame({"ts": ts, "close": value, "value": value}, 1, **kw)


# -- fetching --------------------------------------------------------------------------------------
@dataclass
class Fetch:
    frame: pd.DataFrame
    requests: int
    outputsize: str | None = None  # what was asked for (None: the function has no outputsize)
    first_available: pd.Timestamp | None = None  # the oldest point in the answer, before filtering
    last_available: pd.Timestamp | None = None
    short_pages: int = 0  # answers asked again because they looked short (0 or 1: one answer per fetch)
    short_pages_recovered: int = 0  # of them, answers whose repeat held rows the first lacked

    def covers(self, start) -> bool:
        """Whether the answer reaches back to `start`: a compact answer (100 points) may not, and an
        empty window it does not cover is unknown, not empty."""
        if self.outputsize != "compact":
            return True
        return self.first_available is not None and self.first_available <= _utc(start)


def _utc(x) -> pd.Timestamp:
    t = pd.Timestamp(x)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _spec(name: str) -> SeriesSpec:
    try:
        return SERIES[name]
    except KeyError:
        raise ValueError(f"unknown Alpha Vantage series {name!r}; expected one of {sorted(SERIES)}") from None


def request_params(name: str, api_key: str, outputsize: str = "compact") -> dict[str, str]:
    """The query string for one series (outputsize only where the function takes it)."""
    spec = _spec(name)
    if outputsize not in ("compact", "full"):
        raise ValueError(f"outputsize must be compact or full, not {outputsize!r}")
    params = {"function": spec.function, **spec.params}
    if spec.has_outputsize:
        params["outputsize"] = outputsize
    params["apikey"] = api_key
    return params


def _require_client(http, api_key: str, endpoint: str, partition: str | None) -> None:
    if not isinstance(http, AlphaVantageHTTP):
        raise TypeError("use alphavantage.make_http(...): Alpha Vantage needs its throttle-aware client")
    if not api_key:
        raise NoCredentialsError("ALPHA_VANTAGE_API_KEY is not set", vendor=VENDOR, endpoint=endpoint,
                                 partition=partition)


def fetch_series(
    http: AlphaVantageHTTP,
    name: str,
    *,
    start=None,
    end=None,
    outputsize: str = "compact",
    partition: str | None = None,
    api_key: str,
    budget: RequestBudget | None = None,
    ingested_at: datetime | None = None,
) -> Fetch:
    """One series as the canonical frame, oldest first, restricted to [start, end) when given.

    One request (plus retries for throttles and transient failures, each paid from `budget`).
    """
    spec = _spec(name)
    _require_client(http, api_key, spec.function, partition)
    params = request_params(name, api_key, outputsize)
    before = http.requests_sent
    ingested_at = ingested_at or datetime.now(timezone.utc)  # one stamp, so repeated answers compare equal

    def ask() -> pd.DataFrame:
        return http.query(params, endpoint=spec.function, partition=partition, budget=budget,
                          parse=lambda payload: parse_payload(payload, function=spec.function, series=name,
                                                              market=spec.params.get("market"),
                                                              partition=partition, ingested_at=ingested_at))

    def short(f: pd.DataFrame) -> bool:
        if params.get("outputsize") == "compact":
            return len(f) < COMPACT_POINTS  # a full compact answer is all it can be, wherever `start` is
        return start is not None and (f.empty or f["ts"].iloc[0] > _utc(start))

    frame, shorts, added = ask(), 0, False
    if short(frame):
        shorts = 1
        for _ in range(SHORT_PAGE_ASKS - 1):
            merged = union_answers(frame, ask(), what="rows", vendor=VENDOR, endpoint=spec.function,
                                   partition=partition)
            frame, added = merged, added or len(merged) > len(frame)
            if not short(frame):
                break  # whole
    first = frame["ts"].iloc[0] if len(frame) else None
    last = frame["ts"].iloc[-1] if len(frame) else None
    if start is not None:
        frame = frame[frame["ts"] >= _utc(start)]
    if end is not None:
        frame = frame[frame["ts"] < _utc(end)]
    frame = frame.reset_index(drop=True)
    fetch = Fetch(frame, http.requests_sent - before, params.get("outputsize"), first, last,
                  short_pages=shorts, short_pages_recovered=int(added))
    if start is not None and not fetch.covers(start):
        log.warning("alphavantage %s %s: the compact answer starts at %s, after %s; use outputsize=full",
                    name, partition or "", first, _utc(start))
    log.info("alphavantage %s %s: %d rows, %d requests%s", name, partition or "", len(frame), fetch.requests,
             f" (a short answer asked again: {'recovered rows' if added else 'kept as the series history'})"
             if shorts else "")
    return fetch


@dataclass(frozen=True)
class Probe:
    status: str  # "ok" or the error's vendor status (no_access, not_entitled, rate_limited, failing, ...)
    message: str
    requests: int

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def probe(http: AlphaVantageHTTP, api_key: str, budget: RequestBudget | None = None, *,
          series: str = "SPY") -> Probe:
    """Whether the key works now: one compact request (it costs one of the day's requests), never raises
    for vendor errors. Used by the restoration sensor to see whether access came back."""
    spec = _spec(series)
    before = http.requests_sent
    try:
        _require_client(http, api_key, spec.function, None)
        payload = http.query(request_params(series, api_key, "compact"), endpoint=spec.function, budget=budget)
        frame = parse_payload(payload, function=spec.function, series=series, market=spec.params.get("market"))
    except VendorError as e:
        return Probe(e.status, str(e), http.requests_sent - before)
    return Probe("ok", f"{series}: {len(frame)} points", http.requests_sent - before)
