"""Coinbase Exchange twin: `GET /products/{product_id}/candles` exactly as the public API answers it.

Rows are `[time, low, high, open, close, volume]`, newest first, at most 300 per request;
bars above 60 s are aggregated from the 1-minute data and labelled by their open time.
"""

from __future__ import annotations

import math
import re
import time
from typing import Callable

import numpy as np

from .market import GeneratedMarket, empty_arrays, to_seconds

GRANULARITIES = (60, 300, 900, 3600, 21600, 86400)
MAX_CANDLES = 300
# First day with data per product (we don't go earlier than 2018-11-10).
LISTINGS = {"BTC-USD": "2018-11-10", "ETH-USD": "2018-11-10", "SOL-USD": "2021-06-01"}

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
        return 200, rows(aggregate(arrs, g)), {}

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

