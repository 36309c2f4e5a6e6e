"""Alpha Vantage twin: `GET /query?function=...&apikey=...` for the functions the platform uses.

`TIME_SERIES_DAILY` (SPY, QQQ), `FX_DAILY` (EUR/USD, USD/JPY, ...), `DIGITAL_CURRENCY_DAILY` (BTC, ETH,
SOL in USD, daily bars of the generated 1-minute market, so they agree with the other crypto twins),
`TREASURY_YIELD` (daily; 3month..30year), `WTI` and `BRENT` (daily). Bodies as the vendor writes them:
newest first, a dict keyed by date, every value a string; `compact` is the latest 100 points, `full`
everything from 2018; the macro series use "." where a weekday has no value.

Like the real service, everything answers HTTP 200, errors and throttles included:
- more than `per_minute` served requests per key within `window_s` seconds -> the `Note` body;
- more than `per_day` per key in a UTC day -> the daily-cap `Information` body (it quotes the key,
  as the real one does, so clients must redact it);
- a wrong or missing key (core `credential` check) -> the invalid-key `Error Message`;
- a denied entitlement, or a function listed in `premium_functions` -> the premium `Information`.
Throttled requests are not counted. Both limits are attributes (None = unlimited), changeable while
the server runs; `reset_counters()` forgets what was counted.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Callable

import numpy as np

from .market import ASSETS, GeneratedMarket

START = date(2018, 1, 1)  # first date of every generated series (BTC starts at its listing)
HORIZON = date(2040, 12, 31)  # generated paths are fixed up to here, so the data never depends on "today"
COMPACT = 100

NOTE_BODY = {
    "Note": "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute and "
    "500 calls per day. Please visit https://www.alphavantage.co/premium/ if you would like to target a "
    "higher API call frequency."
}
INVALID_KEY_BODY = {
    "Error Message": "the parameter apikey is invalid or missing. Please claim your free API key on "
    "(https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds."
}
PREMIUM_BODY = {
    "Information": "Thank you for using Alpha Vantage! This is a premium endpoint. You may subscribe to any of "
    "the premium plans at https://www.alphavantage.co/premium/ to instantly unlock all premium endpoints"
}


def daily_limit_body(key: str, limit: int) -> dict:
    return {
        "Information": f"We have detected your API key as {key} and our standard API rate limit is {limit} "
        "requests per day. Please subscribe to any of the premium plans at "
        "https://www.alphavantage.co/premium/ to instantly remove all daily rate limits."
    }


def invalid_call_body(function: str | None) -> dict:
    return {
        "Error Message": "Invalid API call. Please retry or visit the documentation "
        f"(https://www.alphavantage.co/documentation/) for {function or 'the function'}."
    }


@dataclass(frozen=True)
class _Level:
    """A seeded daily path: log price (or level for yields) reverting to `mean`."""

    mean: float
    vol: float  # daily standard deviation (log units for prices, points for yields)
    reversion: float  # daily pull towards the mean
    decimals: int
    volume: float | None = None  # median daily volume, None where the series has none
    log: bool = True
    gaps: float = 0.0  # share of weekdays with "." (macro series: holidays)


EQUITIES = {"SPY": _Level(470.0, 0.011, 0.01, 4, 8.0e7), "QQQ": _Level(400.0, 0.014, 0.01, 4, 4.5e7)}
FX = {
    ("EUR", "USD"): _Level(1.09, 0.004, 0.01, 4),
    ("USD", "JPY"): _Level(145.0, 0.005, 0.01, 4),
    ("GBP", "USD"): _Level(1.27, 0.004, 0.01, 4),
}
YIELDS = {
    "3month": _Level(4.9, 0.02, 0.03, 2, log=False, gaps=0.03),
    "2year": _Level(4.6, 0.05, 0.02, 2, log=False, gaps=0.03),
    "5year": _Level(4.3, 0.05, 0.02, 2, log=False, gaps=0.03),
    "7year": _Level(4.3, 0.05, 0.02, 2, log=False, gaps=0.03),
    "10year": _Level(4.3, 0.05, 0.02, 2, log=False, gaps=0.03),
    "30year": _Level(4.5, 0.045, 0.02, 2, log=False, gaps=0.03),
}
COMMODITIES = {"WTI": _Level(75.0, 0.02, 0.02, 2, gaps=0.03), "BRENT": _Level(80.0, 0.019, 0.02, 2, gaps=0.03)}
COMMODITY_NAMES = {"WTI": "Crude Oil Prices WTI", "BRENT": "Crude Oil Prices Brent"}
MATURITY_NAMES = {"3month": "3-Month", "2year": "2-Year", "5year": "5-Year", "7year": "7-Year",
                  "10year": "10-Year", "30year": "30-Year"}
CRYPTO_NAMES = {"BTC": "Bitcoin", "ETH": "Ethereum", "SOL": "Solana"}


class AlphaVantage:
    prefix = "alphavantage"
    rate_limited_body = NOTE_BODY  # what the core's "429" fault sends
    wrong_shape_body = {"Meta Data": {"1. Information": "Daily Prices (open, high, low, close) and Volumes"}}

    def __init__(
        self,
        generated: GeneratedMarket,
        *,
        seed: int | None = None,
        rate_limit: tuple[float, int] | None = None,
        per_minute: int | None = 5,
        per_day: int | None = 25,
        window_s: float = 60.0,
        premium_functions: set[str] | frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.generated = generated
        self.seed = generated.seed if seed is None else int(seed)
        self.rate_limit = rate_limit  # the core's HTTP 429 limiter: Alpha Vantage throttles in the body
        self.per_minute = per_minute
        self.per_day = per_day
        self.window_s = window_s
        self.premium_functions = set(premium_functions)
        self.clock = clock
        self._lock = threading.Lock()
        self._recent: dict[str, deque] = defaultdict(deque)
        self._daily: dict[tuple[str, date], int] = defaultdict(int)
        self._paths: dict[tuple, list[tuple[str, dict]]] = {}
        self._crypto_days: dict[tuple[str, int], tuple] = {}

    # -- the core's twin interface ------------------------------------------------------------
    @staticmethod
    def credential(req) -> str | None:
        v = req.query.get("apikey")
        return v[0] if v and v[0] else None

    @staticmethod
    def auth_error(missing: bool) -> tuple[int, dict]:
        return 200, INVALID_KEY_BODY

    @staticmethod
    def entitlement_error(kind: str, req) -> tuple[int, dict]:
        return 200, (PREMIUM_BODY if kind == "not_entitled" else INVALID_KEY_BODY)

    @staticmethod
    def error_body(status: int, message: str) -> dict:
        return {"Error Message": message}

    @staticmethod
    def duplicate_rows(obj, rng):
        """The `data` list shapes can repeat rows; a dict keyed by date cannot."""
        if isinstance(obj, dict) and isinstance(obj.get("data"), list):
            rows = obj["data"] + obj["data"]
            rng.shuffle(rows)
            return {**obj, "data": rows}
        return obj

    def reset_counters(self) -> None:
        with self._lock:
            self._recent.clear()
            self._daily.clear()

    def configure(self, **settings) -> None:
        """Change per_minute, per_day, window_s or premium_functions while serving."""
        for name, value in settings.items():
            if name not in ("per_minute", "per_day", "window_s", "premium_functions"):
                raise TypeError(f"unknown setting {name!r}")
            setattr(self, name, set(value) if name == "premium_functions" else value)

    def handle(self, req) -> tuple[int, object, dict]:
        if req.method != "GET" or req.path.rstrip("/") != "/query":
            return 404, {"Error Message": "Not Found"}, {}
        arg = {k: (v[0] if v else "") for k, v in req.query.items()}
        throttled = self._throttle(arg.get("apikey", ""))
        if throttled is not None:
            return 200, throttled, {}
        function = arg.get("function", "").upper()
        if function in self.premium_functions:
            return 200, PREMIUM_BODY, {}
        handler = {
            "TIME_SERIES_DAILY": self._time_series_daily,
            "FX_DAILY": self._fx_daily,
            "DIGITAL_CURRENCY_DAILY": self._digital_currency_daily,
            "TREASURY_YIELD": self._treasury_yield,
            "WTI": self._commodity,
            "BRENT": self._commodity,
        }.get(function)
        body = handler(function, arg) if handler else None
        return 200, (body if body is not None else invalid_call_body(function or None)), {}

    # -- throttling -----------------------------------------------------------------------------
    def _throttle(self, key: str) -> dict | None:
        now = self.clock()
        today = datetime.fromtimestamp(now, timezone.utc).date()
        with self._lock:
            if self.per_day is not None and self._daily[(key, today)] >= self.per_day:
                return daily_limit_body(key, self.per_day)
            recent = self._recent[key]
            while recent and recent[0] <= now - self.window_s:
                recent.popleft()
            if self.per_minute is not None and len(recent) >= self.per_minute:
                return NOTE_BODY
            recent.append(now)
            self._daily[(key, today)] += 1
        return None

    # -- functions ------------------------------------------------------------------------------
    def _last_day(self) -> date:
        """The latest complete UTC day: yesterday."""
        return datetime.fromtimestamp(self.clock(), timezone.utc).date() - timedelta(days=1)

    def _window(self, points: list[tuple[str, dict]], outputsize: str | None) -> list[tuple[str, dict]]:
        last = self._last_day().isoformat()
        i = _bisect_right(points, last)
        points = points[:i]
        if outputsize != "full":
            points = points[-COMPACT:]
        return points[::-1]  # newest first

    def _time_series_daily(self, function, arg):
        symbol = arg.get("symbol", "").upper()
        size = arg.get("outputsize", "compact").lower()
        if symbol not in EQUITIES or size not in ("compact", "full"):
            return None
        points = self._window(self._ohlc(("EQ", symbol), EQUITIES[symbol]), size)
        meta = {
            "1. Information": "Daily Prices (open, high, low, close) and Volumes",
            "2. Symbol": symbol,
            "3. Last Refreshed": points[0][0] if points else "",
            "4. Output Size": "Full size" if size == "full" else "Compact",
            "5. Time Zone": "US/Eastern",
        }
        return {"Meta Data": meta, "Time Series (Daily)": dict(points)}

    def _fx_daily(self, function, arg):
        pair = (arg.get("from_symbol", "").upper(), arg.get("to_symbol", "").upper())
        size = arg.get("outputsize", "compact").lower()
        if pair not in FX or size not in ("compact", "full"):
            return None
        points = self._window(self._ohlc(("FX", *pair), FX[pair]), size)
        meta = {
            "1. Information": "Forex Daily Prices (open, high, low, close)",
            "2. From Symbol": pair[0],
            "3. To Symbol": pair[1],
            "4. Output Size": "Full size" if size == "full" else "Compact",
            "5. Last Refreshed": f"{points[0][0]} 21:55:00" if points else "",
            "6. Time Zone": "UTC",
        }
        return {"Meta Data": meta, "Time Series FX (Daily)": dict(points)}

    def _digital_currency_daily(self, function, arg):
        symbol, market = arg.get("symbol", "").upper(), arg.get("market", "").upper()
        if symbol not in ASSETS or market != "USD":
            return None
        first = self.generated.listing_day(symbol)
        last = (self._last_day() - date(1970, 1, 1)).days
        points = []
        for d in range(last, first - 1, -1):  # newest first
            o, h, l, c, v = self._crypto_day(symbol, d)
            if o is None:
                continue
            day = (date(1970, 1, 1) + timedelta(days=d)).isoformat()
            points.append((day, {"1. open": f"{o:.8f}", "2. high": f"{h:.8f}", "3. low": f"{l:.8f}",
                                 "4. close": f"{c:.8f}", "5. volume": f"{v:.8f}"}))
        meta = {
            "1. Information": "Daily Prices and Volumes for Digital Currency",
            "2. Digital Currency Code": symbol,
            "3. Digital Currency Name": CRYPTO_NAMES.get(symbol, symbol),
            "4. Market Code": market,
            "5. Market Name": "United States Dollar",
            "6. Last Refreshed": f"{points[0][0]} 00:00:00" if points else "",
            "7. Time Zone": "UTC",
        }
        return {"Meta Data": meta, "Time Series (Digital Currency Daily)": dict(points)}

    def _crypto_day(self, symbol: str, day_index: int) -> tuple:
        key = (symbol, day_index)
        hit = self._crypto_days.get(key)
        if hit is None:
            a = self.generated.day(symbol, day_index)
            if a["t"].size == 0:
                hit = (None,) * 5
            else:
                hit = (a["open"][0], a["high"].max(), a["low"].min(), a["close"][-1], float(a["volume"].sum()))
            self._crypto_days[key] = hit
        return hit

    def _treasury_yield(self, function, arg):
        maturity = arg.get("maturity", "10year").lower()
        if arg.get("interval", "monthly").lower() != "daily" or maturity not in YIELDS:
            return None  # the twin serves daily points only
        return {
            "name": f"{MATURITY_NAMES[maturity]} Treasury Constant Maturity Rate",
            "interval": "daily",
            "unit": "percent",
            "data": self._values(("YIELD", maturity), YIELDS[maturity]),
        }

    def _commodity(self, function, arg):
        if arg.get("interval", "monthly").lower() != "daily":
            return None
        return {
            "name": COMMODITY_NAMES[function],
            "interval": "daily",
            "unit": "dollars per barrel",
            "data": self._values(("CMDTY", function), COMMODITIES[function]),
        }

    def _values(self, tag: tuple, level: _Level) -> list[dict]:
        points = self._window(self._ohlc(tag, level), "full")
        return [{"date": day, "value": rec["value"]} for day, rec in points]

    # -- generated paths ------------------------------------------------------------------------
    def _ohlc(self, tag: tuple, level: _Level) -> list[tuple[str, dict]]:
        """Weekday points from START to HORIZON, oldest first, as (date, vendor record) pairs."""
        with self._lock:
            hit = self._paths.get(tag)
        if hit is not None:
            return hit
        days = np.arange(np.datetime64(START), np.datetime64(HORIZON) + 1)
        days = days[np.is_busday(days)]
        n = days.size
        rng = np.random.default_rng([self.seed, zlib.crc32("/".join(tag).encode())])
        z = rng.standard_normal(n)
        x0 = np.log(level.mean) if level.log else level.mean
        x = np.empty(n)
        cur = x0
        for i in range(n):  # mean-reverting steps; sequential by nature, once per series
            cur = cur + level.reversion * (x0 - cur) + level.vol * z[i]
            x[i] = cur
        close = np.exp(x) if level.log else np.maximum(x, 0.01)
        fmt = f"{{:.{level.decimals}f}}"
        dates = [str(d) for d in days]
        if tag[0] in ("YIELD", "CMDTY"):
            gap = rng.random(n) < level.gaps
            points = [(dates[i], {"value": "." if gap[i] else fmt.format(close[i])}) for i in range(n)]
        else:
            prev = np.r_[close[0], close[:-1]]
            open_ = prev * np.exp(rng.standard_normal(n) * level.vol * 0.2)
            spread = np.abs(rng.standard_normal((2, n))) * level.vol * 0.5
            high = np.maximum(open_, close) * np.exp(spread[0])
            low = np.minimum(open_, close) * np.exp(-spread[1])
            volume = (level.volume or 0.0) * np.exp(0.3 * rng.standard_normal(n))
            points = []
            for i in range(n):
                rec = {"1. open": fmt.format(open_[i]), "2. high": fmt.format(high[i]),
                       "3. low": fmt.format(low[i]), "4. close": fmt.format(close[i])}
                if level.volume is not None:
                    rec["5. volume"] = str(int(volume[i]))
                points.append((dates[i], rec))
        with self._lock:
            self._paths[tag] = points
        return points


def _bisect_right(points: list[tuple[str, dict]], day: str) -> int:
    lo, hi = 0, len(points)
    while lo < hi:
        mid = (lo + hi) // 2
        if points[mid][0] <= day:
            lo = mid + 1
        else:
            hi = mid
    return lo
