"""CoinAPI market-data twin: OHLCV history and the metrics API, as rest.coinapi.io answers them.

- `GET /v1/ohlcv/{symbol_id}/history?period_id&time_start&time_end&limit`: the recorded item shape
  (`time_period_start, time_period_end, time_open, time_close, price_open, price_high, price_low,
  price_close, volume_traded, trades_count`, times with 7 fractional digits), oldest first,
  `time_end` exclusive, at most `limit` items (default 100, 1..100000), periods without trades left
  out. Bars are aggregated from the sandbox's 1-minute market; a perpetual is the spot path times
  (1 + a small deterministic basis) with its own volume.
- `GET /v1/metrics/symbol/history?metric_id=DERIVATIVES_FUNDING_RATE_CURRENT&symbol_id&period_id
  &time_start&time_end&limit`: the spec's example shape (`time_period_start, time_period_end,
  time_open, time_close, first, last, min, max, count, sum`). Funding rates change every 8 h
  (00/08/16 UTC), deterministic, around 1e-4 (the perp basis follows them). Period defaults to
  1SEC as documented.
- Auth: `X-CoinAPI-Key` header or `apikey` query parameter; 401 `{"error": ...}` otherwise.
- Errors are `{"error": "..."}` like the recorded 400; 550 (no data) when nothing exists in the
  window (before a listing, after now) or the symbol is unknown; 400 for a bad parameter, and for
  a metric the symbol lacks, worded like the recorded 400.
- Credits: a rolling-window quota per key (default 1,000,000 per 24 h, like the docs' example)
  reported in `x-ratelimit-limit/-remaining/-used/-request-cost` on every data answer; a request
  with `limit` costs one credit per 100 items returned (at least one). Spent quota -> 429 with the
  headers. `x-ratelimit-reset` (older docs; ISO 8601) is only sent when `send_reset=True`.
- `short_pages(count)`: the next `count` OHLCV answers with more than one item lose their newest half
  (a dropped page tail) with status 200. Coinbase's `set_holes` does not reach this twin: CoinAPI
  still reports the minutes Coinbase lost. `COINBASE_SPOT_THIN_USD` is the low-liquidity product.
- Entitlements (`SandboxServer.deny`): no_access -> 403; not_entitled -> 404 on the metrics API
  (what a plan without metrics answers) and 403 elsewhere. Those bodies' wording is the sandbox's.
"""

from __future__ import annotations

import math
import re
import threading
import time
import zlib
from collections import deque
from datetime import datetime, timezone
from typing import Callable

import numpy as np

from .market import ASSETS, DAY, GeneratedMarket, to_seconds

FUNDING_METRIC = "DERIVATIVES_FUNDING_RATE_CURRENT"
FUNDING_INTERVAL = 8 * 3600
MAX_LIMIT = 100_000
DEFAULT_LIMIT = 100
# Period identifiers CoinAPI lists with a fixed length (months and years are not served here).
PERIODS = {
    **{f"{n}SEC": n for n in (1, 2, 3, 4, 5, 6, 10, 15, 20, 30)},
    **{f"{n}MIN": 60 * n for n in (1, 2, 3, 4, 5, 6, 10, 15, 20, 30)},
    **{f"{n}HRS": 3600 * n for n in (1, 2, 3, 4, 6, 8, 12)},
    **{f"{n}DAY": DAY * n for n in (1, 2, 3, 5, 7, 10)},
}
# First day with data per symbol (no earlier than the sandbox market's own listings).
LISTINGS = {
    "COINBASE_SPOT_BTC_USD": "2018-11-10",
    "COINBASE_SPOT_ETH_USD": "2018-11-10",
    "COINBASE_SPOT_SOL_USD": "2021-06-01",
    "COINBASE_SPOT_THIN_USD": "2018-11-10",
    "BINANCEFTS_PERP_BTC_USDT": "2019-09-09",
    "BINANCEFTS_PERP_ETH_USDT": "2019-11-27",
    "BINANCEFTS_PERP_SOL_USDT": "2021-06-01",
}
OHLCV_FIELDS = ("time_period_start", "time_period_end", "time_open", "time_close", "price_open", "price_high",
                "price_low", "price_close", "volume_traded", "trades_count")
NO_DATA = "You requested specific single item that we don't have at this moment."
TOO_MANY = "Too many requests - You have exceeded your API key rate limits"

_OHLCV = re.compile(r"^/v1/ohlcv/([^/]+)/history/?$")
_METRICS = re.compile(r"^/v1/metrics/symbol/history/?$")
_SYMBOL = re.compile(r"^([A-Z0-9]+)_(SPOT|PERP)_([A-Z0-9]+)_([A-Z0-9]+)$")
_COMPACT = {15: "%Y%m%dT%H%M%S", 13: "%Y%m%dT%H%M", 11: "%Y%m%dT%H", 8: "%Y%m%d"}  # by length
_COMPACT_RE = re.compile(r"\d{8}(T\d{2}(\d{2}){0,2})?")


class _BadParam(Exception):
    pass


def _unit(seed: int, tag: str, idx: np.ndarray) -> np.ndarray:
    """Deterministic uniforms in (0, 1) per integer index (splitmix64), random access, no state."""
    with np.errstate(over="ignore"):
        x = idx.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        x ^= np.uint64((seed * 0x2545F491 + zlib.crc32(tag.encode())) & 0xFFFFFFFFFFFFFFFF)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)


def _normal(seed: int, tag: str, idx: np.ndarray) -> np.ndarray:
    u1, u2 = _unit(seed, tag + ":a", idx), _unit(seed, tag + ":b", idx)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def iso7(seconds: np.ndarray, millis: np.ndarray | None = None) -> list[str]:
    """CoinAPI's output time format: 2024-01-01T00:00:00.0000000Z."""
    secs = np.asarray(seconds, dtype="int64")
    base = np.datetime_as_string(secs.astype("datetime64[s]"), unit="s")
    if millis is None:
        return [f"{b}.0000000Z" for b in base]
    return [f"{b}.{int(m):03d}0000Z" for b, m in zip(base, millis)]


def parse_time(value: str) -> float:
    """The input formats CoinAPI documents: ISO 8601 with or without separators (naive = UTC)."""
    text = value.strip()
    if _COMPACT_RE.fullmatch(text):
        try:
            return datetime.strptime(text, _COMPACT[len(text)]).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            pass
    elif not text.replace(".", "", 1).isdigit():  # bare numbers are not a documented input
        try:
            return to_seconds(text)
        except (ValueError, TypeError):
            pass
    raise _BadParam(f"Invalid time format: {value}")


class CoinAPI:
    prefix = "coinapi"
    rate_limited_body = {"error": TOO_MANY}
    wrong_shape_body = [{"time_period_start": "2024-01-01T00:00:00.0000000Z", "price_close": "n/a"}]

    def __init__(
        self,
        generated: GeneratedMarket,
        replay: dict | None = None,
        *,
        rate_limit: tuple[float, int] | None = (10.0, 20),
        quota: int = 1_000_000,
        quota_window_s: float = 86_400.0,
        send_reset: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.generated = generated
        self.replay = dict(replay or {})
        self.rate_limit = rate_limit
        self.clock = clock
        self.seed = getattr(generated, "seed", 7)
        self._quota_lock = threading.Lock()
        self.set_quota(quota, quota_window_s, send_reset=send_reset)
        self._short_left = 0

    def short_pages(self, count: int) -> None:
        """The next `count` OHLCV answers with more than one item lose their newest half."""
        with self._quota_lock:
            self._short_left = int(count)

    def _take_short(self) -> bool:
        with self._quota_lock:
            if self._short_left <= 0:
                return False
            self._short_left -= 1
            return True

    # -- the core's interface -------------------------------------------------------------------
    @staticmethod
    def error_body(status: int, message: str) -> dict:
        return {"error": message}

    @staticmethod
    def credential(req) -> str | None:
        for name, value in req.headers.items():
            if name.lower() == "x-coinapi-key":
                return value or None
        values = req.query.get("apikey")
        return values[0] if values and values[0] else None

    @staticmethod
    def auth_error(missing: bool) -> tuple[int, dict]:
        if missing:
            return 401, {"error": "You didn't specify API key or it is empty."}
        return 401, {"error": "Invalid API key"}

    @staticmethod
    def entitlement_error(kind: str, req) -> tuple[int, dict]:
        if kind == "not_entitled" and req.path.startswith("/v1/metrics"):
            return 404, {"error": "The metrics API is not available in your subscription plan."}
        return 403, {"error": "Forbidden - Your API key doesn't have enough privileges to access this resource"}

    def set_quota(self, limit: int, window_s: float = 86_400.0, *, send_reset: bool | None = None) -> None:
        """Change the credit quota (and forget the credits used so far)."""
        with self._quota_lock:
            self.quota, self.quota_window_s = int(limit), float(window_s)
            if send_reset is not None:
                self.send_reset = send_reset
            self._spent: dict[str, deque] = {}

    def handle(self, req) -> tuple[int, object, dict]:
        if req.method != "GET":
            return 405, {"error": "Method not allowed"}, {}
        m = _OHLCV.match(req.path)
        if m:
            serve = lambda: self.ohlcv(m[1], req.query)  # noqa: E731
        elif _METRICS.match(req.path):
            serve = lambda: self.metrics(req.query)  # noqa: E731
        else:
            return 404, {"error": "Not found"}, {}
        key = self.credential(req) or "anonymous"
        now = self.clock()
        used = self._used(key, now)
        if used >= self.quota:
            return 429, {"error": TOO_MANY}, self._headers(key, now, cost=0)
        try:
            status, body = serve()
        except _BadParam as exc:
            return 400, {"error": str(exc)}, {}
        cost = 0
        if status == 200:
            cost = max(1, math.ceil(len(body) / 100)) if "limit" in req.query else 1
            with self._quota_lock:
                self._spent.setdefault(key, deque()).append((now, cost))
        return status, body, self._headers(key, now, cost)

    # -- credits --------------------------------------------------------------------------------
    def _used(self, key: str, now: float) -> int:
        with self._quota_lock:
            spent = self._spent.setdefault(key, deque())
            while spent and spent[0][0] <= now - self.quota_window_s:
                spent.popleft()
            return sum(c for _, c in spent)

    def _headers(self, key: str, now: float, cost: int) -> dict[str, str]:
        used = self._used(key, now)
        headers = {
            "x-ratelimit-limit": str(self.quota),
            "x-ratelimit-remaining": str(max(0, self.quota - used)),
            "x-ratelimit-used": str(used),
            "x-ratelimit-request-cost": str(cost),
        }
        if self.send_reset:
            with self._quota_lock:
                spent = list(self._spent.get(key, ()))
            # When the next credit frees up: once enough of the oldest spends leave the window.
            reset, freed = now, 0
            for t, c in spent:
                if used - freed < self.quota:
                    break
                freed += c
                reset = t + self.quota_window_s
            millis = math.ceil(reset * 1000)  # never announce a reset before it happens
            headers["x-ratelimit-reset"] = iso7(np.array([millis // 1000]), np.array([millis % 1000]))[0]
        return headers

    # -- instruments ----------------------------------------------------------------------------
    @staticmethod
    def _symbol(symbol_id: str) -> tuple[str, str, str] | None:
        m = _SYMBOL.match(symbol_id)
        if not m or symbol_id not in LISTINGS:
            return None
        return m[2], m[3], m[4]  # kind, base, quote

    def _market(self, base: str, quote: str):
        for product in (f"{base}-{quote}", f"{base}-USD"):
            if product in self.replay:
                return self.replay[product]
        return self.generated

    def funding_rates(self, asset: str, k: np.ndarray) -> np.ndarray:
        """The funding rate of 8-hour interval k (unix seconds // 28800): ~1e-4, slowly cycling."""
        k = np.asarray(k, dtype="int64")
        phase = (zlib.crc32(asset.encode()) % 1000) / 1000 * 2 * np.pi
        x = 0.8 * np.sin(2 * np.pi * k / 93.0 + phase) + 0.5 * _normal(self.seed, f"funding:{asset}", k)
        return np.round(np.clip(1e-4 + 1.2e-4 * x, -7.5e-4, 7.5e-4), 8)

    def _minutes(self, kind: str, base: str, quote: str, lo: float, hi: float) -> dict[str, np.ndarray]:
        a = self._market(base, quote).arrays(f"{base}-{quote}", lo, hi)
        if kind == "SPOT" or a["t"].size == 0:
            return a
        hours = a["t"] // 3600
        basis = 3 * self.funding_rates(base, hours // 8) + 2e-4 * _normal(self.seed, f"basis:{base}", hours)
        factor = 1.0 + basis
        out = {"t": a["t"]}
        for c in ("open", "high", "low", "close"):
            out[c] = np.round(a[c] * factor, 2)  # rounding is monotone: high/low stay the extremes
        out["volume"] = np.round(a["volume"] * 4.0, 3)
        return out

    # -- OHLCV ----------------------------------------------------------------------------------
    def ohlcv(self, symbol_id: str, query: dict[str, list[str]]) -> tuple[int, object]:
        g = self._period(query, required=True)
        limit = self._limit(query)
        parsed = self._symbol(symbol_id)
        if parsed is None:
            return 550, {"error": f"{NO_DATA} Unknown symbol_id: {symbol_id}"}
        kind, base, quote = parsed
        start, end = self._window(query, symbol_id)
        first = math.ceil(start / g) * g
        hi = min(end, (self.clock() // 60 + 1) * 60)  # later minutes do not exist yet
        rows: list[dict] = []
        lo = first
        while lo < hi and len(rows) < limit:
            chunk_hi = min(hi, lo + (limit - len(rows)) * g)
            rows += self._bars(kind, base, quote, lo, chunk_hi, g)
            lo = chunk_hi
        if not rows:
            return 550, {"error": NO_DATA}
        rows = rows[:limit]
        if len(rows) > 1 and self._take_short():
            rows = rows[: len(rows) // 2]  # oldest first: the newest half is the dropped tail
        return 200, rows

    def _bars(self, kind, base, quote, lo, hi, g) -> list[dict]:
        a = self._minutes(kind, base, quote, lo, hi)
        if a["t"].size == 0:
            return []
        t = a["t"] // g * g
        starts = np.flatnonzero(np.r_[True, t[1:] != t[:-1]])
        ends = np.r_[starts[1:], t.size] - 1
        median = ASSETS[base].volume_median if base in ASSETS else 1.0
        spot_volume = a["volume"] / (4.0 if kind == "PERP" else 1.0)
        trades = 1 + np.floor(spot_volume / median * 50).astype("int64") * (3 if kind == "PERP" else 1)
        t_first, t_last = a["t"][starts], a["t"][ends]
        ms_open = (_unit(self.seed, "open", t_first) * 30_000).astype("int64")  # within the first traded minute
        ms_close = 30_000 + (_unit(self.seed, "close", t_last) * 29_999).astype("int64")
        cols = {
            "time_period_start": iso7(t[starts]),
            "time_period_end": iso7(t[starts] + g),
            "time_open": iso7(t_first + ms_open // 1000, ms_open % 1000),
            "time_close": iso7(t_last + ms_close // 1000, ms_close % 1000),
            "price_open": a["open"][starts].tolist(),
            "price_high": np.maximum.reduceat(a["high"], starts).tolist(),
            "price_low": np.minimum.reduceat(a["low"], starts).tolist(),
            "price_close": a["close"][ends].tolist(),
            "volume_traded": np.round(np.add.reduceat(a["volume"], starts), 8).tolist(),
            "trades_count": np.add.reduceat(trades, starts).tolist(),
        }
        return [dict(zip(OHLCV_FIELDS, r)) for r in zip(*(cols[f] for f in OHLCV_FIELDS))]

    # -- metrics --------------------------------------------------------------------------------
    def metrics(self, query: dict[str, list[str]]) -> tuple[int, object]:
        metric_id, symbol_id = self._arg(query, "metric_id"), self._arg(query, "symbol_id")
        if not metric_id:
            raise _BadParam("Missing required parameter: metric_id")
        if not symbol_id:
            raise _BadParam("Missing required parameter: symbol_id")
        parsed = self._symbol(symbol_id)
        if metric_id != FUNDING_METRIC or parsed is None or parsed[0] != "PERP":
            raise _BadParam(f"Metric: {metric_id} not found mapping for symbol: {symbol_id}")
        g = self._period(query, required=False)
        limit = self._limit(query)
        start, end = self._window(query, symbol_id)
        first = math.ceil(start / g) * g
        last = min(end, self.clock())  # a period exists once it has begun
        n = max(0, min(limit, math.ceil((last - first) / g)))
        if n == 0:
            return 550, {"error": NO_DATA}
        p = first + g * np.arange(n, dtype="int64")
        k0, k1 = p // FUNDING_INTERVAL, (p + g - 1) // FUNDING_INTERVAL
        rate = lambda k: self.funding_rates(parsed[1], k)  # noqa: E731
        lo_v, hi_v = np.full(n, np.inf), np.full(n, -np.inf)
        weighted = np.zeros(n)
        for j in range(int((k1 - k0).max()) + 1):
            k = np.minimum(k0 + j, k1)
            live = k0 + j <= k1
            v = rate(k)
            lo_v, hi_v = np.where(live, np.minimum(lo_v, v), lo_v), np.where(live, np.maximum(hi_v, v), hi_v)
            overlap = np.minimum(p + g, (k + 1) * FUNDING_INTERVAL) - np.maximum(p, k * FUNDING_INTERVAL)
            weighted += np.where(live, v * np.clip(overlap, 0, None), 0.0)
        count = max(1, g // 60)  # the metric is sampled once a minute
        ms_open = (_unit(self.seed, "m_open", p) * min(g * 1000 // 2, 30_000)).astype("int64")
        ms_close = (_unit(self.seed, "m_close", p) * min(g * 1000 // 2, 30_000)).astype("int64")
        close_s = p + g - 1 - ms_close // 1000
        cols = {
            "time_period_start": iso7(p),
            "time_period_end": iso7(p + g),
            "time_open": iso7(p + ms_open // 1000, ms_open % 1000),
            "time_close": iso7(close_s, 999 - ms_close % 1000),
            "first": rate(k0).tolist(),
            "last": rate(k1).tolist(),
            "min": lo_v.tolist(),
            "max": hi_v.tolist(),
            "count": [count] * n,
            "sum": np.round(weighted / g * count, 10).tolist(),
        }
        names = list(cols)
        return 200, [dict(zip(names, r)) for r in zip(*(cols[c] for c in names))]

    # -- parameters -----------------------------------------------------------------------------
    @staticmethod
    def _arg(query, name):
        v = query.get(name)
        return v[0] if v and v[0] != "" else None

    def _period(self, query, *, required: bool) -> int:
        pid = self._arg(query, "period_id")
        if pid is None:
            if required:
                raise _BadParam("Missing required parameter: period_id")
            pid = "1SEC"  # the metrics API's documented default
        if pid.upper() not in PERIODS:
            raise _BadParam(f"Invalid period_id: {pid}")
        return PERIODS[pid.upper()]

    def _limit(self, query) -> int:
        raw = self._arg(query, "limit")
        if raw is None:
            return DEFAULT_LIMIT
        try:
            limit = int(raw)
        except ValueError:
            raise _BadParam(f"Invalid limit: {raw}") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise _BadParam(f"Parameter limit must be between 1 and {MAX_LIMIT}")
        return limit

    def _window(self, query, symbol_id: str) -> tuple[float, float]:
        listing = to_seconds(LISTINGS[symbol_id])
        start = parse_time(self._arg(query, "time_start")) if self._arg(query, "time_start") else listing
        end = parse_time(self._arg(query, "time_end")) if self._arg(query, "time_end") else self.clock()
        if end < start:
            raise _BadParam("Parameter time_end must be after time_start")
        return max(start, listing), end
