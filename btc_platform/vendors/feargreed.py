"""Crypto Fear & Greed Index (alternative.me, free, no key): `GET /fng/?limit=N&format=json`.

Documented answer:
`{"name": "Fear and Greed Index", "data": [{"value": "40", "value_classification": "Fear",
"timestamp": "1551157200", "time_until_update": "68499"}], "metadata": {"error": null}}`:
values and timestamps are strings, items come newest first, `time_until_update` is on the newest item
only, `limit=0` returns the whole history (the default is 1, the latest value). `date_format`
(`us`, `cn`, `kr`, `world`) replaces the unix timestamp by a formatted date; we send none and get unix
seconds, but parse the formats too. A non-null `metadata.error` is the vendor's error report, usually
inside an HTTP 200: it is classified (rate limit -> RateLimitedError, temporary -> TransientError, else
BadRequestError) inside the retry loop. The vendor's limit is 60 requests per minute.

Canonical frame: `ts` (UTC day, midnight), `value` (Int64, 0..100), `classification`, `source`
("alternative.me"), `ingested_at`; oldest first. Days the vendor lacks stay absent (not filled): the
real history has missing stretches. The index for day D is published at D 00:00 UTC.

Short answers: the vendor answers `limit` items, counted back from the latest, whatever days it lacks,
so an answer with fewer is short unless the whole history is shorter. Its oldest items, the days a
partition asks for, are what a dropped body tail loses (status 200, no error), so a short answer is
asked for again until it is whole, at most `SHORT_PAGE_ASKS` requests in all, and the answers are
merged (two different values for one day still fail). An answer still short after that, two more
agreeing with it, is the vendor's whole history.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, time, timezone
from typing import Any

import pandas as pd

from btc_platform.vendors.answers import union_answers
from btc_platform.vendors.errors import (
    BadRequestError,
    MalformedPayloadError,
    RateLimitedError,
    TransientError,
    VendorError,
)
from btc_platform.vendors.http import VendorHTTP

VENDOR = "feargreed"
SOURCE = "alternative.me"
ENDPOINT = "/fng/"
NAME = "Fear and Greed Index"
RATE_LIMIT_PER_S = 1.0  # 60 per minute
RATE_LIMIT_BURST = 5
# The vendor's classes, with the bands the real history uses (checked against its full record).
CLASSES = ("Extreme Fear", "Fear", "Neutral", "Greed", "Extreme Greed")
CLASS_UPPER_BOUNDS = (25, 46, 54, 75, 100)
COLUMNS = ["ts", "value", "classification", "source", "ingested_at"]
DATE_FORMATS = {"us": "%m-%d-%Y", "cn": "%Y-%m-%d", "kr": "%Y-%m-%d", "world": "%d-%m-%Y"}
SHORT_PAGE_ASKS = 3  # requests per short answer at most: the first and two that must agree with it

log = logging.getLogger("btc_platform.vendors.feargreed")


def classify(value: int) -> str:
    """The vendor's class name for a value (bands as in the real history)."""
    for name, upper in zip(CLASSES, CLASS_UPPER_BOUNDS):
        if value <= upper:
            return name
    raise ValueError(f"index value {value} is outside 0..100")


def error_class(message: str) -> type[VendorError]:
    """How a `metadata.error` text maps to the taxonomy."""
    text = message.lower()
    if "rate limit" in text or "too many" in text:
        return RateLimitedError
    if any(w in text for w in ("temporar", "maintenance", "unavailable", "try again")):
        return TransientError
    return BadRequestError


class FearGreedHTTP(VendorHTTP):
    """VendorHTTP that raises the vendor's `metadata.error` (an HTTP 200 body) inside the retry loop."""

    def _get_once(self, path, params, *, endpoint, partition) -> Any:
        body = super()._get_once(path, params, endpoint=endpoint, partition=partition)
        meta = body.get("metadata") if isinstance(body, dict) else None
        error = meta.get("error") if isinstance(meta, dict) else None
        if error:
            raise self._error(error_class(str(error)), f"metadata.error: {str(error)[:300]}",
                              endpoint=endpoint, partition=partition, http_status=200)
        return body


def make_http(base_url: str, **overrides) -> FearGreedHTTP:
    overrides.setdefault("rate_per_s", RATE_LIMIT_PER_S)
    overrides.setdefault("burst", RATE_LIMIT_BURST)
    return FearGreedHTTP(vendor=VENDOR, base_url=base_url, **overrides)


_DIGITS = re.compile(r"^\d+$")


def _day(raw: Any, date_format: str | None) -> int | None:
    """Unix seconds of the UTC midnight that starts the item's day."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int) or (isinstance(raw, str) and _DIGITS.match(raw.strip())):
        return int(raw) // 86_400 * 86_400
    if isinstance(raw, str) and date_format in DATE_FORMATS:
        try:
            parsed = datetime.strptime(raw.strip(), DATE_FORMATS[date_format])
        except ValueError:
            return None
        return int(parsed.replace(tzinfo=timezone.utc).timestamp())
    return None


def parse_payload(
    payload: Any,
    *,
    partition: str | None = None,
    date_format: str | None = None,
    ingested_at: datetime | None = None,
) -> pd.DataFrame:
    """Validate one answer and return the canonical frame, oldest first."""

    def malformed(why: str) -> MalformedPayloadError:
        return MalformedPayloadError(why, vendor=VENDOR, endpoint=ENDPOINT, partition=partition)

    if not isinstance(payload, dict):
        raise malformed(f"expected the name/data/metadata object, got {type(payload).__name__}")
    meta = payload.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise malformed("`metadata` must be an object")
    if meta and meta.get("error"):
        message = str(meta["error"])
        raise error_class(message)(f"metadata.error: {message[:300]}", vendor=VENDOR, endpoint=ENDPOINT,
                                   partition=partition, http_status=200)
    data = payload.get("data")
    if not isinstance(data, list):
        raise malformed(f"`data` must be a list, got {type(data).__name__}")
    days, values, classes = [], [], []
    for item in data:
        if not isinstance(item, dict):
            raise malformed(f"data items must be objects; got {str(item)[:80]}")
        for key in ("value", "value_classification", "timestamp"):
            if key not in item:
                raise malformed(f"item lacks `{key}`: {str(item)[:80]}")
        raw_v = item["value"]
        if isinstance(raw_v, bool) or not (
            isinstance(raw_v, int) or (isinstance(raw_v, str) and _DIGITS.match(raw_v.strip()))
        ):
            raise malformed(f"`value` is not an integer: {str(raw_v)[:40]!r}")
        value = int(raw_v)
        if not 0 <= value <= 100:
            raise malformed(f"`value` {value} is outside 0..100")
        cls = item["value_classification"]
        if not isinstance(cls, str) or not cls.strip():
            raise malformed(f"`value_classification` is not a name: {str(cls)[:40]!r}")
        day = _day(item["timestamp"], date_format)
        if day is None:
            raise malformed(f"`timestamp` is not readable: {str(item['timestamp'])[:40]!r}")
        days.append(day)
        values.append(value)
        classes.append(cls.strip())
    raw = pd.DataFrame({"ts": pd.to_datetime(pd.Series(days, dtype="int64"), unit="s", utc=True),
                        "value": values, "classification": classes})
    raw = raw.drop_duplicates()
    if raw["ts"].duplicated().any():
        ts = raw.loc[raw["ts"].duplicated(), "ts"].iloc[0]
        raise malformed(f"two different index values for {ts:%F}")
    raw = raw.sort_values("ts", kind="stable").reset_index(drop=True)
    ingested = pd.Timestamp(ingested_at or datetime.now(timezone.utc)).tz_convert("UTC")
    frame = pd.DataFrame(
        {
            "ts": raw["ts"].astype("datetime64[ns, UTC]"),
            "value": raw["value"].astype("Int64"),
            "classification": raw["classification"].astype("object"),
            "source": pd.Series([SOURCE] * len(raw), dtype="object"),
            "ingested_at": pd.Series([ingested] * len(raw), dtype="datetime64[ns, UTC]"),
        }
    )
    return frame[COLUMNS]


def _utc(x: datetime | date | pd.Timestamp) -> pd.Timestamp:
    if isinstance(x, date) and not isinstance(x, datetime):
        x = datetime.combine(x, time(), tzinfo=timezone.utc)
    t = pd.Timestamp(x)
    if t.tzinfo is None:
        raise ValueError(f"naive datetime {x!r}: pass timezone-aware UTC times")
    return t.tz_convert("UTC")


def fetch_history(
    http: VendorHTTP,
    start: datetime | date,
    end: datetime | date,
    partition: str | None = None,
    *,
    ingested_at: datetime | None = None,
    now: datetime | None = None,
) -> pd.DataFrame:
    """The index for the days in [start, end), oldest first; missing days stay missing.

    The API counts `limit` back from the latest value, so we ask for as many items as there are days
    from `start` to today (`now`); a missing day only makes that reach further back. Recent
    partitions thus cost a small answer; `fetch_all` takes the whole history at once.
    """
    start_ts, end_ts = _utc(start), _utc(end)
    today = _utc(now or datetime.now(timezone.utc)).floor("D")
    limit = max(1, (today - start_ts.floor("D")).days + 2)
    ingested_at = ingested_at or datetime.now(timezone.utc)  # one stamp, so repeated answers compare equal

    def ask() -> pd.DataFrame:
        return http.get_json(ENDPOINT, {"limit": limit, "format": "json"}, endpoint=ENDPOINT, partition=partition,
                             parse=lambda payload: parse_payload(payload, partition=partition, ingested_at=ingested_at))

    frame, short, added = ask(), False, False
    if len(frame) < limit:
        short = True
        for _ in range(SHORT_PAGE_ASKS - 1):
            merged = union_answers(frame, ask(), what="index values", vendor=VENDOR, endpoint=ENDPOINT,
                                   partition=partition)
            frame, added = merged, added or len(merged) > len(frame)
            if len(frame) >= limit:
                break  # whole
    frame = frame[(frame["ts"] >= start_ts) & (frame["ts"] < end_ts)].reset_index(drop=True)
    log.info("feargreed %s: %d days%s", partition or f"{start_ts:%F}..{end_ts:%F}", len(frame),
             f" (a short answer asked again: {'recovered days' if added else 'kept as the whole history'})"
             if short else "")
    return frame


def fetch_all(http: VendorHTTP, *, ingested_at: datetime | None = None) -> pd.DataFrame:
    """The whole history in one request (`limit=0`)."""
    payload = http.get_json(ENDPOINT, {"limit": 0, "format": "json"}, endpoint=ENDPOINT)
    return parse_payload(payload, ingested_at=ingested_at)


def probe(http: VendorHTTP) -> None:
    """One cheap request (the latest value); raises the VendorError of the failure."""
    payload = http.get_json(ENDPOINT, {"limit": 1, "format": "json"}, endpoint=ENDPOINT)
    if parse_payload(payload).empty:
        raise MalformedPayloadError("the latest value is missing (empty `data`)", vendor=VENDOR,
                                    endpoint=ENDPOINT)


__all__ = [
    "CLASSES", "COLUMNS", "ENDPOINT", "SOURCE", "classify", "fetch_all", "fetch_history", "make_http",
    "parse_payload", "probe",
]
