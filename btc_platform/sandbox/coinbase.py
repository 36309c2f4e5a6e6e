"""Coinbase Exchange twin: `GET /products/{product_id}/candles` exactly as the public API answers it.

Rows are `[time, low, high, open, close, volume]`, newest first, at most 300 per request;
bars above 60 s are aggregated from the 1-minute data and labelled by their open time.

Faults of this venue, beside the server's generic ones (both off by default):
- `set_holes(per_day)`: seeded runs of 1-10 traded minutes vanish from the liquid products' candles
  (at every granularity), while the sandbox CoinAPI still reports them: lost data that looks like
  quiet minutes. `holes(product, start, end)` lists them, so tests know the truth.
- `short_pages(count)`: the next `count` answers with more than one row lose their oldest half (a
  dropped page tail), with status 200 and no error.
`THIN-USD` is a low-liquidity product whose absent minutes are genuine no-trade minutes.
"""

from __future__ import annotations

import math
import re
import threading
import time
import zlib
from typing import Callable

import numpy as np

from .market import DAY, GeneratedMarket, empty_arrays, to_seconds

GRANULARITIES = (60, 300, 900, 3600, 21600, 86400)
MAX_CANDLES = 300
# First day with data per product (we don't go earlier than 2018-11-10).
LISTINGS = {"BTC-USD": "2018-11-10", "ETH-USD": "2018-11-10", "SOL-USD": "2021-06-01", "THIN-USD": "2018-11-10"}
LIQUID = ("BTC-USD", "ETH-USD", "SOL-USD")  # products that trade in (nearly) every minute
HOLE_BARS = (1, 10)  # shortest and longest run of minutes a hole drops

_CANDLES = re.compile(r"^/products/([^/]+)/candles/?$")


class CoinbaseExchange:
    prefix = "coinbase"
    rate_limited_body = {"message": "Public rate limit exceeded"}

    def __init__(
        self,
        generated: GeneratedMarket,
        replay: dict | None = None,
        *,
        rate_limit: tuple[float, int] = (10.0, 15),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.generated = generated
        self.replay = dict(replay or {})
        self.rate_limit = rate_limit
        self.clock = clock
        self._lock = threading.Lock()
        self._short_left = 0
        self.set_holes(0)

    # -- venue faults -----------------------------------------------------------------------------
    def set_holes(self, per_day: int, *, products=LIQUID, seed: int = 0) -> None:
        """Drop `per_day` seeded runs of HOLE_BARS minutes per UTC day from `products` (0: none)."""
        self.hole_plan = (int(per_day), frozenset(products), int(seed))

    def holes(self, product: str, start_s: float, end_s: float) -> list[tuple[int, int]]:
        """The [start, end) unix-second runs dropped from `product` within [start_s, end_s)."""
        per_day, products, seed = self.hole_plan
        if per_day <= 0 or product not in products:
            return []
        out = []
        for d in range(int(start_s // DAY), int(math.ceil(end_s / DAY))):
            rng = np.random.default_rng([seed, zlib.crc32(product.encode()), d])
            lengths = rng.integers(HOLE_BARS[0], HOLE_BARS[1] + 1, per_day)
            # Non-overlapping, never touching: each hole gets its own slot of the day.
            slot = 1440 // per_day
            starts = np.arange(per_day) * slot + rng.integers(1, np.maximum(2, slot - lengths))
            out += [(d * DAY + 60 * int(a), d * DAY + 60 * int(a + n)) for a, n in zip(starts, lengths)
                    if start_s < d * DAY + 60 * int(a + n) and d * DAY + 60 * int(a) < end_s]
        return out

    def short_pages(self, count: int) -> None:
        """The next `count` candle answers with more than one row lose their oldest half."""
        with self._lock:
            self._short_left = int(count)

    def _take_short(self) -> bool:
        with self._lock:
            if self._short_left <= 0:
                return False
            self._short_left -= 1
            return True

    @staticmethod
    def error_body(status: int, message: str) -> dict:
        return {"message": message}

    def products(self) -> set[str]:
        return set(LISTINGS) | set(self.replay)

    def handle(self, req) -> tuple[int, object, dict]:
        m = _CANDLES.match(req.path)
        if req.method != "GET" or not m or m[1] not in self.products():
            return 404, {"message": "NotFound"}, {}
        return self.candles(m[1], req.query)

    def candles(self, product: str, query: dict[str, list[str]]) -> tuple[int, object, dict]:
        def arg(name):
            v = query.get(name)
            return v[0] if v and v[0] != "" else None

        raw_g = arg("granularity")
        try:
            g = int(raw_g) if raw_g is not None else 60  # the API defaults to 1-minute bars
        except ValueError:
            g = -1
        if g not in GRANULARITIES:
            return 400, {"message": "Unsupported granularity"}, {}

        now = self.clock()
        try:
            start = to_seconds(arg("start")) if arg("start") is not None else None
            end = to_seconds(arg("end")) if arg("end") is not None else None
        except (ValueError, TypeError):
            return 400, {"message": "Invalid start or end time"}, {}
        # Missing bounds: the latest 300 bars (or 300 from the bound that was given).
        if start is None and end is None:
            end = now // g * g
        if start is None:
            start = end - (MAX_CANDLES - 1) * g
        if end is None:
            end = start + (MAX_CANDLES - 1) * g
        if end < start:
            return 400, {"message": "start must be before end"}, {}
        if (end - start) / g + 1 > MAX_CANDLES:
            msg = (
                "granularity too small for the requested time range. "
                "Count of aggregations requested exceeds 300"
            )
            return 400, {"message": msg}, {}

        first, last = math.ceil(start / g) * g, math.floor(end / g) * g
        lo = max(first, to_seconds(LISTINGS[product]) if product in LISTINGS else first)
        hi = min(last + g, (now // 60 + 1) * 60)  # the current minute is in progress; later ones absent
        arrs = self._market(product).arrays(product, lo, hi) if hi > lo else empty_arrays()
        for a, b in self.holes(product, lo, hi):
            keep = (arrs["t"] < a) | (arrs["t"] >= b)
            arrs = {c: v[keep] for c, v in arrs.items()}
        out = rows(aggregate(arrs, g))
        if len(out) > 1 and self._take_short():
            out = out[: len(out) // 2]  # newest first: the oldest half is the dropped tail
        return 200, out, {}

    def _market(self, product: str):
        return self.replay.get(product, self.generated)


def aggregate(a: dict[str, np.ndarray], g: int) -> dict[str, np.ndarray]:
    """OHLCV bars of g seconds from time-sorted 1-minute arrays, labelled by open time."""
    if g == 60 or a["t"].size == 0:
        return a
    t = a["t"] // g * g
    starts = np.flatnonzero(np.r_[True, t[1:] != t[:-1]])
    ends = np.r_[starts[1:], t.size] - 1
    return {
        "t": t[starts],
        "open": a["open"][starts],
        "high": np.maximum.reduceat(a["high"], starts),
        "low": np.minimum.reduceat(a["low"], starts),
        "close": a["close"][ends],
        "volume": np.round(np.add.reduceat(a["volume"], starts), 8),
    }


def rows(a: dict[str, np.ndarray]) -> list[list]:
    """Coinbase row order and newest first."""
    order = ("t", "low", "high", "open", "close", "volume")
    cols = [a[c][::-1].tolist() for c in order]  # tolist keeps t as Python ints
    return [list(r) for r in zip(*cols)]

