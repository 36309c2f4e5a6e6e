"""Deterministic 1-minute market data for the sandbox: generated or replayed from real files.

Both markets answer `minutes(symbol, start, end)` for [start, end) as a frame
(ts [UTC], open, high, low, close, volume); minutes without trades are absent.
`arrays(...)` is the same data as numpy arrays, which the vendor twins use to stay fast.
"""

from __future__ import annotations

import re
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

DAY = 86_400
MINUTES_PER_YEAR = 525_600
COLUMNS = ("t", "open", "high", "low", "close", "volume")


def to_seconds(x) -> float:
    """Unix seconds from int/float, numeric string, ISO 8601 string (naive = UTC) or datetime."""
    if isinstance(x, (int, float, np.integer, np.floating)):
        return float(x)
    if isinstance(x, pd.Timestamp):
        x = x.to_pydatetime()
    if isinstance(x, date) and not isinstance(x, datetime):
        x = datetime(x.year, x.month, x.day)
    if isinstance(x, str):
        s = x.strip()
        try:
            return float(s)
        except ValueError:
            x = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    if isinstance(x, datetime):
        if x.tzinfo is None:
            x = x.replace(tzinfo=timezone.utc)
        return x.timestamp()
    raise TypeError(f"cannot read a time from {x!r}")


def empty_arrays() -> dict[str, np.ndarray]:
    return {c: np.empty(0, np.int64 if c == "t" else np.float64) for c in COLUMNS}


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if not parts:
        return empty_arrays()
    if len(parts) == 1:
        return parts[0]
    return {c: np.concatenate([p[c] for p in parts]) for c in COLUMNS}


def _slice(arrs: dict[str, np.ndarray], start_s: float, end_s: float) -> dict[str, np.ndarray]:
    t = arrs["t"]
    i, j = np.searchsorted(t, start_s, "left"), np.searchsorted(t, end_s, "left")
    return {c: arrs[c][i:j] for c in COLUMNS}


class _Market:
    def arrays(self, symbol: str, start_s: float, end_s: float) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def minutes(self, symbol: str, start_ts, end_ts) -> pd.DataFrame:
        a = self.arrays(symbol, to_seconds(start_ts), to_seconds(end_ts))
        return pd.DataFrame(
            {
                "ts": pd.to_datetime(a["t"], unit="s", utc=True),
                **{c: a[c] for c in COLUMNS[1:]},
            }
        )


@dataclass(frozen=True)
class AssetParams:
    listing: str  # first UTC day with data
    price0: float  # price at the listing
    vol: float  # annualized volatility
    drift: float  # annual log drift of the trend the daily path reverts to
    no_trade: float  # share of minutes without trades
    volume_median: float  # median base volume per minute
    # Daily swing of the no-trade share (0: the same all day): thin markets empty out in quiet hours.
    no_trade_swing: float = 0.0


ASSETS: dict[str, AssetParams] = {
    # BTC/ETH: the platform does not go earlier than 2018-11-10.
    "BTC": AssetParams("2018-11-10", 6400.0, 0.60, 0.35, 0.005, 6.0),
    "ETH": AssetParams("2018-11-10", 210.0, 0.75, 0.35, 0.01, 60.0),
    "SOL": AssetParams("2021-06-01", 35.0, 1.00, 0.20, 0.02, 400.0),
    # A low-liquidity product (sandbox only): no trades in ~30% of minutes, from ~6% at the busiest
    # hour (16:00 UTC) to ~54% at the quietest (04:00 UTC). Genuine no-trade minutes for the tests.
    "THIN": AssetParams("2018-11-10", 2.0, 0.90, 0.0, 0.30, 800.0, no_trade_swing=0.8),
}


def base_asset(symbol: str) -> str:
    """'BTC-USD', 'BTC_USD', 'BTC/USD', 'BTCUSDT', 'btc' -> 'BTC' (all vendors share one path)."""
    s = re.split(r"[-_/]", symbol.upper())[0]
    for quote in ("USDT", "USDC", "USD"):
        if s.endswith(quote) and len(s) > len(quote):
            return s[: -len(quote)]
    return s


class GeneratedMarket(_Market):
    """Seeded synthetic market with random access by day.

    A daily anchor path (log price at each UTC midnight: GBM-like steps with a weak pull to a
    drifting trend so decades stay plausible) is generated in seeded blocks; each day is a
    Brownian bridge between its two anchors, seeded by (seed, symbol, day), so days join
    exactly and any day costs one bridge plus (once) the anchors up to it.
    """

    BLOCK = 512  # anchor days per seeded block
    REVERSION = 1 / 180  # daily pull of the log price towards the trend
    CACHE_DAYS = 128

    def __init__(self, seed: int = 7) -> None:
        self.seed = int(seed)
        self._lock = threading.Lock()
        self._anchors: dict[str, np.ndarray] = {}
        self._days: OrderedDict[tuple[str, int], dict[str, np.ndarray]] = OrderedDict()

    def listing_day(self, symbol: str) -> int:
        return int(to_seconds(self._params(symbol).listing) // DAY)

    def _params(self, symbol: str) -> AssetParams:
        try:
            return ASSETS[base_asset(symbol)]
        except KeyError:
            raise KeyError(f"no generated market for {symbol!r}") from None

    def _rng(self, asset: str, tag: int, n: int) -> np.random.Generator:
        # crc32, not hash(): Python's str hash is salted per process.
        return np.random.default_rng([self.seed, zlib.crc32(asset.encode()), tag, n])

    def _anchor_pair(self, asset: str, k: int) -> tuple[float, float]:
        """Log prices at the start of listing-relative day k and of day k + 1."""
        p = ASSETS[asset]
        with self._lock:
            a = self._anchors.get(asset)
            if a is None:
                a = np.array([np.log(p.price0)])
            while len(a) < k + 2:
                b = (len(a) - 1) // self.BLOCK
                z = self._rng(asset, 0, b).standard_normal(self.BLOCK)
                sd, g = p.vol / np.sqrt(365.0), p.drift / 365.0
                x0, out, x = a[0], np.empty(self.BLOCK), a[-1]
                for i in range(self.BLOCK):  # sequential by nature; 512 steps are cheap
                    day = len(a) - 1 + i
                    x = x + g + self.REVERSION * (x0 + g * day - x) + sd * z[i]
                    out[i] = x
                a = np.concatenate([a, out])
            self._anchors[asset] = a
        return float(a[k]), float(a[k + 1])

    def day(self, symbol: str, day_index: int) -> dict[str, np.ndarray]:
        """All traded minutes of one UTC day (day_index = unix days), cached."""
        asset = base_asset(symbol)
        key = (asset, day_index)
        with self._lock:
            hit = self._days.get(key)
            if hit is not None:
                self._days.move_to_end(key)
                return hit
        arrs = self._make_day(asset, day_index)
        with self._lock:
            self._days[key] = arrs
            while len(self._days) > self.CACHE_DAYS:
                self._days.popitem(last=False)
        return arrs

    def _make_day(self, asset: str, day_index: int) -> dict[str, np.ndarray]:
        p = self._params(asset)
        k = day_index - self.listing_day(asset)
        if k < 0:
            return empty_arrays()
        x_open, x_close = self._anchor_pair(asset, k)
        rng = self._rng(asset, 1, day_index)
        n, s = 1440, p.vol / np.sqrt(MINUTES_PER_YEAR)
        eps = rng.standard_normal(n) * s
        u_hi, u_lo = rng.random(n), rng.random(n)
        z_vol, u_trade = rng.standard_normal(n), rng.random(n)

        # Brownian bridge from x_open to x_close; ends set exactly so days join bit for bit.
        w = np.concatenate([[0.0], np.cumsum(eps)])
        path = x_open + w - np.arange(n + 1) / n * (w[-1] - (x_close - x_open))
        path[0], path[-1] = x_open, x_close
        step = np.diff(path)
        # Exact extremes of a Brownian bridge over one minute with variance s^2.
        up = (step + np.sqrt(step**2 - 2 * s**2 * np.log1p(-u_hi))) / 2
        down = (step - np.sqrt(step**2 - 2 * s**2 * np.log1p(-u_lo))) / 2

        def px(x):
            return np.maximum(np.round(np.exp(x), 2), 0.01)

        points = px(path)
        volume = p.volume_median * np.exp(0.8 * z_vol) * (0.5 + 0.5 * np.abs(step) / s)
        share = p.no_trade
        if p.no_trade_swing:
            share = p.no_trade * (1 + p.no_trade_swing * np.cos(2 * np.pi * (np.arange(n) / n - 4 / 24)))
        keep = u_trade >= share
        arrs = {
            "t": (day_index * DAY + 60 * np.arange(n, dtype=np.int64)),
            "open": points[:-1],
            "high": px(path[:-1] + up),
            "low": px(path[:-1] + down),
            "close": points[1:],
            "volume": np.round(volume, 8),
        }
        out = {c: v[keep] for c, v in arrs.items()}
        for v in out.values():
            v.flags.writeable = False  # cached and shared between requests
        return out

    def arrays(self, symbol: str, start_s: float, end_s: float) -> dict[str, np.ndarray]:
        self._params(symbol)
        first = max(int(start_s // DAY), self.listing_day(symbol))
        last = int(np.ceil(end_s / DAY)) - 1
        parts = [_slice(self.day(symbol, d), start_s, end_s) for d in range(first, last + 1)]
        return _concat(parts)


class ReplayMarket(_Market):
    """Real candles from a folder of Binance 1m kline CSVs (one file per month, loaded lazily).

    Rows with zero trades are no-trade minutes and are dropped. Outside the files: nothing.
    The symbol argument is ignored: one folder is one instrument.
    """

    _NAME = re.compile(r"(\d{4})-(\d{2})\.csv(?:\.gz)?$")

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._files: dict[tuple[int, int], Path] = {}
        for f in sorted(self.directory.iterdir()):
            m = self._NAME.search(f.name)
            if m:
                self._files[(int(m[1]), int(m[2]))] = f
        if not self._files:
            raise FileNotFoundError(f"no monthly kline CSVs in {self.directory}")
        self._lock = threading.Lock()
        self._months: dict[tuple[int, int], dict[str, np.ndarray]] = {}

    def _month(self, key: tuple[int, int]) -> dict[str, np.ndarray]:
        with self._lock:
            hit = self._months.get(key)
        if hit is not None:
            return hit
        raw = pd.read_csv(self._files[key], header=None, usecols=[0, 1, 2, 3, 4, 5, 8])
        raw = raw[raw[8] > 0].sort_values(0)
        open_time = raw[0].to_numpy(np.int64)
        # Binance switched spot dumps to microseconds in 2025.
        t = open_time // (1_000_000 if open_time.size and open_time.max() > 10**14 else 1000)
        arrs = {"t": t} | {c: raw[i].to_numpy(np.float64) for i, c in enumerate(COLUMNS[1:], 1)}
        with self._lock:
            self._months[key] = arrs
        return arrs

    def arrays(self, symbol: str, start_s: float, end_s: float) -> dict[str, np.ndarray]:
        if end_s <= start_s:
            return empty_arrays()
        first = pd.Timestamp(start_s, unit="s", tz="UTC")
        last = pd.Timestamp(end_s - 1e-9, unit="s", tz="UTC")
        parts = []
        for key in sorted(self._files):
            if (first.year, first.month) <= key <= (last.year, last.month):
                parts.append(_slice(self._month(key), start_s, end_s))
        return _concat(parts)
