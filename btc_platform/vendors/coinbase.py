"""Coinbase Exchange candles: `GET /products/{id}/candles?granularity&start&end`.

Rows come back as `[time, low, high, open, close, volume]`, newest first, at most 300 per request;
minutes without trades are absent. We page through a window in requests of at most 300 bars and
validate every page before anything is kept.

A short page (fewer candles than its window holds) is either quiet minutes or a dropped page tail,
which comes back with status 200 and no error. It is asked for again before it is accepted: two
consistent answers (the second adds no candle) mean real no-trade minutes; an answer that adds candles
is merged (a vendor drops rows, it does not invent them: two different candles for one time still
fail) and the page is asked again, at most `SHORT_PAGE_ASKS` times in all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
import logging

import numpy as np
import pandas as pd

from btc_platform.vendors.errors import MalformedPayloadError
from btc_platform.vendors.http import VendorHTTP

VENDOR = "coinbase"
ENDPOINT = "/products/{product_id}/candles"
GRANULARITIES = (60, 300, 900, 3600, 21600, 86400)
MAX_CANDLES_PER_REQUEST = 300
# The public limit is 10 requests/s per IP (burst 15). Pace at the steady rate with a small burst
# (well under the vendor's 15), so time spent between requests (building a frame, a lake upload) is
# made up afterwards instead of lost: with burst 1, a 300 ms write per day drops a backfill to 0.70
# of the limit (benchmarks/ingest.py --write-latency-ms 300).
RATE_LIMIT_PER_S = 10.0
CLIENT_BURST = 5

# First day of 1-minute history the platform ingests per product.
PRODUCT_START_DATES = {
    "BTC-USD": date(2018, 11, 10),
    "ETH-USD": date(2018, 11, 10),
    "SOL-USD": date(2021, 6, 1),
}

SHORT_PAGE_ASKS = 3  # requests per page at most while answers keep adding candles

CANDLE_COLUMNS = ["ts", "symbol", "open", "high", "low", "close", "volume", "source", "ingested_at"]
_PAYLOAD_FIELDS = ["time", "low", "high", "open", "close", "volume"]

log = logging.getLogger("btc_platform.vendors.coinbase")


def make_http(base_url: str, **overrides) -> VendorHTTP:
    settings = {"rate_per_s": RATE_LIMIT_PER_S, "burst": CLIENT_BURST, **overrides}
    return VendorHTTP(vendor=VENDOR, base_url=base_url, **settings)


def request_windows(start: datetime, end: datetime, granularity: int) -> list[tuple[datetime, datetime]]:
    """Split [start, end) into windows of at most 300 bars; each window's `end` is inclusive,
    as the API treats it, so a window is start .. start + 299 bars."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity {granularity} is not one of Coinbase's {GRANULARITIES}")
    step = timedelta(seconds=granularity)
    windows = []
    cursor = start
    while cursor < end:
        last = min(cursor + step * (MAX_CANDLES_PER_REQUEST - 1), end - step)
        windows.append((cursor, last))
        cursor = last + step
    return windows


def parse_candles(
    payload, *, granularity: int, window: tuple[datetime, datetime], partition: str | None
) -> np.ndarray:
    """Validate one page and return it as an (n, 6) float array in the payload's field order."""

    def malformed(why: str) -> MalformedPayloadError:
        return MalformedPayloadError(why, vendor=VENDOR, endpoint=ENDPOINT, partition=partition)

    if not isinstance(payload, list):
        raise malformed(f"expected a JSON array of candles, got {type(payload).__name__}")
    if not payload:
        return np.empty((0, 6))
    if not all(isinstance(row, list) and len(row) == 6 for row in payload):
        bad = next(row for row in payload if not (isinstance(row, list) and len(row) == 6))
        raise malformed(f"candle rows must be [{', '.join(_PAYLOAD_FIELDS)}]; got {str(bad)[:80]}")
    try:
        rows = np.asarray(payload, dtype="float64")
    except (TypeError, ValueError):
        raise malformed("candle rows hold non-numeric values") from None
    if not np.isfinite(rows).all():
        raise malformed("candle rows hold non-finite values")
    times = rows[:, 0]
    lo, hi = window[0].timestamp(), window[1].timestamp()
    outside = (times < lo) | (times > hi)
    if outside.any():
        first = datetime.fromtimestamp(times[outside][0], timezone.utc).isoformat()
        raise malformed(f"candle at {first} lies outside the requested window {window[0]:%FT%TZ}..{window[1]:%FT%TZ}")
    if (times % granularity).any():
        raise malformed(f"candle times are not aligned to granularity {granularity}s")
    return rows


@dataclass
class CandleFetch:
    frame: pd.DataFrame
    pages: int
    requests: int
    short_pages: int = 0  # pages asked again because they held fewer candles than their window
    short_pages_recovered: int = 0  # of them, pages whose later answer held candles the first lacked


def window_bars(window: tuple[datetime, datetime], granularity: int, now: datetime | None = None) -> int:
    """Bars a window (inclusive end) can hold: none that begin after `now` (they do not exist yet)."""
    last = min(window[1].timestamp(), (now or datetime.now(timezone.utc)).timestamp())
    first = window[0].timestamp()
    return 0 if last < first else int((last - first) // granularity) + 1


def fetch_candles(
    http: VendorHTTP,
    product_id: str,
    start: datetime,
    end: datetime,
    *,
    granularity: int = 60,
    partition: str | None = None,
    ingested_at: datetime | None = None,
) -> CandleFetch:
    """All candles of [start, end) as the canonical frame, oldest first, one row per bar."""
    pages = []
    requests_before = http.requests_sent
    short = recovered = 0

    def ask(window):
        # Parsed inside the retry loop: a page that breaks the schema is fetched once more.
        return http.get_json(
            f"/products/{product_id}/candles",
            {"granularity": granularity, "start": window[0].isoformat(), "end": window[1].isoformat()},
            endpoint=ENDPOINT,
            partition=partition,
            parse=lambda payload: parse_candles(payload, granularity=granularity, window=window, partition=partition),
        )

    for window in request_windows(start, end, granularity):
        page = ask(window)
        if len(page) < window_bars(window, granularity):
            short, added = short + 1, False
            for _ in range(SHORT_PAGE_ASKS - 1):
                again = ask(window)
                if np.isin(again[:, 0], page[:, 0]).all():
                    break  # consistent: the absent minutes had no trades
                added, page = True, np.concatenate([page, again])
            recovered += added
        pages.append(page)
    rows = np.concatenate(pages) if pages else np.empty((0, 6))
    frame = _to_frame(rows, product_id, partition, ingested_at or datetime.now(timezone.utc))
    log.info(
        "coinbase %s %s: %d pages (%d short, asked again; %d of them recovered candles), %d candles",
        product_id,
        partition or f"{start:%F}..{end:%F}",
        len(pages),
        short,
        recovered,
        len(frame),
    )
    return CandleFetch(frame=frame, pages=len(pages), requests=http.requests_sent - requests_before,
                       short_pages=short, short_pages_recovered=recovered)


def _to_frame(rows: np.ndarray, product_id: str, partition: str | None, ingested_at: datetime) -> pd.DataFrame:
    raw = pd.DataFrame(rows, columns=_PAYLOAD_FIELDS)
    # Identical repeats (a retried page, a vendor's duplicate row) collapse; conflicting ones are an error.
    raw = raw.drop_duplicates()
    if raw["time"].duplicated().any():
        ts = datetime.fromtimestamp(raw.loc[raw["time"].duplicated(), "time"].iloc[0], timezone.utc)
        raise MalformedPayloadError(
            f"two different candles for {ts.isoformat()}", vendor=VENDOR, endpoint=ENDPOINT, partition=partition
        )
    raw = raw.sort_values("time", kind="stable")
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(raw["time"].astype("int64"), unit="s", utc=True),
            "symbol": product_id,
            "open": raw["open"].to_numpy(),
            "high": raw["high"].to_numpy(),
            "low": raw["low"].to_numpy(),
            "close": raw["close"].to_numpy(),
            "volume": raw["volume"].to_numpy(),
            "source": VENDOR,
            "ingested_at": pd.Timestamp(ingested_at).tz_convert("UTC"),
        }
    )
    return frame.reset_index(drop=True)[CANDLE_COLUMNS]
