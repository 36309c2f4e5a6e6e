"""CryptoQuant twin: `GET /v1/btc/<category>/<metric>?window&from&to&limit` as the documentation states.

Envelope `{"status": {"code": 200, "message": "success"}, "result": {"window": "day", "data": [...]}}`,
rows newest first, labelled `date` ("2019-10-02") in the daily window and `datetime`
("2019-10-02 13:00:00", the hour's open) in the hourly one. `from`/`to` (YYYYMMDD or YYYYMMDDTHHMMSS,
UTC) bound the rows inclusively; without them the latest `limit` rows (default 100, at most 100000)
come back; with a range longer than `limit`, its newest `limit` rows. Only completed windows are
served (no half-built day). Errors use the same envelope with the documented codes: 400 bad_request,
401 unauthorized, 403 forbidden, 404 not_found, 405 method_not_allowed, 429 too_many_requests, 500.

Data: the twin's own seeded generator (seed from the sandbox), consistent like the real series:
hourly inflow/outflow sum to the day's, netflow = inflow - outflow, reserve(t) = reserve(t-1) +
netflow(t) (reported at the end of each window, so the last hour of a day equals the day), exchange
reserve drifts slowly around 2-3M BTC, daily netflow is +-thousands of BTC, the whale ratio stays
within 0.3-0.9, miner reserve ~1.8M BTC, transaction counts sum from hours to days. MVRV is published
daily only (window=hour answers 400). `reserve_usd` and other USD fields are not served.

Entitlements. `sandbox.deny("cryptoquant", <path regex>)` denies whole endpoints (403 forbidden), but
the core matches the path only, not the query, so it cannot deny one *window*. The user's plan lacks
`window=hour`, so the twin keeps its own per-run window plan: `deny_window("hour")` /
`grant_window("hour")` on the twin, or `deny_hourly(sandbox)` / `grant_hourly(sandbox)`. Denied
windows answer the same 403 forbidden body as a denied path.
"""

from __future__ import annotations

import math
import re
import threading
import time
import zlib
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Callable

import numpy as np

DAY = 86_400
HOUR = 3_600
FIRST_DAY = "2011-01-01"  # first day of generated history
MAX_LIMIT = 100_000
DEFAULT_LIMIT = 100
WINDOWS = ("day", "hour", "block")

_MESSAGES = {
    200: "success",
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    429: "too_many_requests",
    500: "internal_server_error",
    502: "bad_gateway",
    503: "service_unavailable",
}


def envelope_error(code: int, description: str) -> dict:
    return {"status": {"code": code, "message": _MESSAGES.get(code, "error"), "description": description}}


# path -> (windows, required fixed params, row fields from the series arrays v at index i)
ENDPOINTS: dict[str, tuple[tuple[str, ...], dict[str, str], Callable]] = {
    "/v1/btc/exchange-flows/netflow": (
        ("day", "hour"), {"exchange": "all_exchange"},
        lambda v, i: {"netflow_total": v["netflow"][i]},
    ),
    "/v1/btc/exchange-flows/inflow": (
        ("day", "hour"), {"exchange": "all_exchange"},
        lambda v, i: {"inflow_total": v["inflow"][i], "inflow_top10": v["inflow"][i] * v["whale"][i]},
    ),
    "/v1/btc/exchange-flows/outflow": (
        ("day", "hour"), {"exchange": "all_exchange"},
        lambda v, i: {"outflow_total": v["outflow"][i]},
    ),
    "/v1/btc/exchange-flows/reserve": (
        ("day", "hour"), {"exchange": "all_exchange"},
        lambda v, i: {"reserve": v["reserve"][i]},
    ),
    "/v1/btc/flow-indicator/exchange-whale-ratio": (
        ("day", "hour"), {"exchange": "all_exchange"},
        lambda v, i: {"exchange_whale_ratio": v["whale"][i]},
    ),
    "/v1/btc/miner-flows/reserve": (
        ("day", "hour"), {"miner": "all_miner"},
        lambda v, i: {"reserve": v["miner_reserve"][i]},
    ),
    "/v1/btc/network-data/transactions-count": (
        ("day", "hour"), {},
        lambda v, i: {"transactions_count_total": int(v["tx"][i]),
                      "transactions_count_mean": v["tx"][i] / v["blocks"]},
    ),
    "/v1/btc/network-data/addresses-count": (
        ("day", "hour"), {},
        lambda v, i: {"addresses_count_active": int(v["active"][i]),
                      "addresses_count_sender": int(round(v["active"][i] * 0.55)),
                      "addresses_count_receiver": int(round(v["active"][i] * 0.62))},
    ),
    "/v1/btc/market-indicator/mvrv": (("day",), {}, lambda v, i: {"mvrv": v["mvrv"][i]}),
}

_TIME = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2}))?$")


def parse_time(s: str) -> int:
    """`YYYYMMDD` or `YYYYMMDDTHHMMSS` (UTC) -> unix seconds; ValueError otherwise."""
    m = _TIME.match(s.strip())
    if not m:
        raise ValueError(s)
    parts = [int(x) if x is not None else 0 for x in m.groups()]
    return int(datetime(*parts, tzinfo=timezone.utc).timestamp())


class OnChainSeries:
    """Seeded daily and hourly series with random access by day (daily states are generated in
    blocks from FIRST_DAY onwards, once; a day's hours from the day's own seed)."""

    BLOCK = 512
    CACHE_DAYS = 512
    NAMES = ("inflow", "outflow", "netflow", "reserve", "whale", "miner_reserve", "tx", "active", "mvrv")

    def __init__(self, seed: int = 7) -> None:
        self.seed = int(seed)
        self.first_day = int(datetime.fromisoformat(FIRST_DAY).replace(tzinfo=timezone.utc).timestamp()) // DAY
        self._lock = threading.Lock()
        self._daily: dict[str, np.ndarray] = {n: np.empty(0) for n in self.NAMES}
        self._state = (2.3e6, 0.0, 1.80e6, 0.0)  # reserve, whale AR, miner reserve, log-mvrv AR
        self._hours: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()

    def _rng(self, tag: int, n: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(b"cryptoquant"), tag, n])

    def _extend(self, upto: int) -> None:
        """Make the daily arrays cover listing-relative days 0..upto (lock held)."""
        while len(self._daily["netflow"]) <= upto:
            b = len(self._daily["netflow"]) // self.BLOCK
            z = self._rng(0, b).standard_normal((7, self.BLOCK))
            k0 = b * self.BLOCK
            reserve, wx, miner, my = self._state
            out = {n: np.empty(self.BLOCK) for n in self.NAMES}
            for i in range(self.BLOCK):  # sequential states; 512 steps are cheap
                k = k0 + i
                weekday = (self.first_day + k + 3) % 7  # 0 = Monday (1970-01-01 was a Thursday)
                gross = 42_000.0 * math.exp(0.28 * z[0, i]) * (0.75 if weekday >= 5 else 1.0)
                target = 2.45e6 + 0.4e6 * math.sin(2 * math.pi * k / 2400)
                net = 0.015 * (target - reserve) + 2600.0 * z[1, i]
                reserve += net
                wx = 0.95 * wx + 0.3 * z[2, i]
                miner += -0.003 * (miner - (1.82e6 + 0.03e6 * math.sin(2 * math.pi * k / 1500))) + 180.0 * z[3, i]
                my = 0.993 * my + 0.035 * z[6, i]
                out["inflow"][i] = gross + max(net, 0.0)
                out["outflow"][i] = gross + max(-net, 0.0)
                out["netflow"][i] = out["inflow"][i] - out["outflow"][i]
                out["reserve"][i] = reserve
                out["whale"][i] = 0.6 + 0.27 * math.tanh(wx)
                out["miner_reserve"][i] = miner
                out["tx"][i] = round(260_000 * math.exp(0.12 * z[4, i]) * (1 + k / 8000))
                out["active"][i] = round(800_000 * math.exp(0.1 * z[5, i]))
                out["mvrv"][i] = min(max(1.7 * math.exp(my), 0.5), 4.5)
            self._state = (reserve, wx, miner, my)
            for n in self.NAMES:
                self._daily[n] = np.concatenate([self._daily[n], out[n]])

    def days(self, d0: int, d1: int) -> dict[str, np.ndarray]:
        """Daily values for unix days d0..d1 inclusive (d0 >= first_day)."""
        k0, k1 = d0 - self.first_day, d1 - self.first_day
        with self._lock:
            self._extend(k1)
            return {n: a[k0 : k1 + 1] for n, a in self._daily.items()}

    def _start_of(self, k: int) -> tuple[float, float]:
        """(exchange reserve, miner reserve) at the start of listing-relative day k."""
        if k == 0:
            return 2.3e6, 1.80e6
        return float(self._daily["reserve"][k - 1]), float(self._daily["miner_reserve"][k - 1])

    def hours(self, day: int) -> dict[str, np.ndarray]:
        """The 24 hourly values of unix day `day`, cached."""
        with self._lock:
            hit = self._hours.get(day)
            if hit is not None:
                self._hours.move_to_end(day)
                return hit
            k = day - self.first_day
            self._extend(k)
            d = {n: float(a[k]) for n, a in self._daily.items()}
            reserve0, miner0 = self._start_of(k)
        rng = self._rng(1, day)
        w_in, w_out, w_tx = (rng.dirichlet(np.full(24, a)) for a in (12.0, 12.0, 20.0))
        z = rng.standard_normal((3, 24))
        inflow, outflow = d["inflow"] * w_in, d["outflow"] * w_out
        netflow = inflow - outflow
        reserve = reserve0 + np.cumsum(netflow)
        reserve[-1] = d["reserve"]  # the day's reserve is its last hour's, exactly
        frac = np.arange(1, 25) / 24
        bridge = np.cumsum(z[1]) - frac * np.sum(z[1])  # zero at the day's end
        miner = miner0 + (d["miner_reserve"] - miner0) * frac + 6.0 * bridge
        miner[-1] = d["miner_reserve"]
        out = {
            "inflow": inflow,
            "outflow": outflow,
            "netflow": netflow,
            "reserve": reserve,
            "whale": np.clip(d["whale"] + 0.06 * z[0], 0.2, 0.98),
            "miner_reserve": miner,
            "tx": rng.multinomial(int(d["tx"]), w_tx).astype(np.float64),
            "active": np.round(d["active"] * 0.07 * np.exp(0.08 * z[2])),
        }
        with self._lock:
            self._hours[day] = out
            while len(self._hours) > self.CACHE_DAYS:
                self._hours.popitem(last=False)
        return out


class CryptoQuant:
    prefix = "cryptoquant"
    rate_limited_body = envelope_error(429, "Too many requests. Please retry later.")
    wrong_shape_body = {"status": {"code": 200, "message": "success"},
                        "result": {"data": {"date": "2024-01-01"}}}

    def __init__(
        self,
        market=None,
        *,
        seed: int | None = None,
        rate_limit: tuple[float, int] | None = (5.0, 10),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if seed is None:
            seed = getattr(market, "seed", 7)
        self.series = OnChainSeries(seed)
        self.rate_limit = rate_limit
        self.clock = clock

    # -- the twin interface ----------------------------------------------------------------------
    @staticmethod
    def error_body(status: int, message: str) -> dict:
        return envelope_error(status, message)

    @staticmethod
    def credential(req) -> str | None:
        value = next((v for k, v in req.headers.items() if k.lower() == "authorization"), None)
        if not value:
            return None
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        return token.strip() or None

    @staticmethod
    def auth_error(missing: bool) -> tuple[int, dict]:
        return 401, envelope_error(401, "Missing access token." if missing else "Invalid access token.")

    @staticmethod
    def entitlement_error(kind: str, req) -> tuple[int, dict]:
        if kind == "no_access":
            return 401, envelope_error(401, "Invalid access token.")
        return 403, envelope_error(403, "Your plan does not include access to this endpoint or window.")

    @staticmethod
    def duplicate_rows(obj, rng):
        data = obj.get("result", {}).get("data") if isinstance(obj, dict) else None
        if isinstance(data, list):
            rows = data + data
            rng.shuffle(rows)
            obj = {**obj, "result": {**obj["result"], "data": rows}}
        return obj

    def handle(self, req) -> tuple[int, object, dict]:
        if req.method != "GET":
            return 405, envelope_error(405, f"Method {req.method} is not allowed."), {}
        path = req.path.rstrip("/") or "/"
        spec = ENDPOINTS.get(path)
        if spec is None:
            return 404, envelope_error(404, "The requested resource was not found."), {}
        windows, required, fields = spec

        def arg(name):
            v = req.query.get(name)
            return v[0] if v and v[0] != "" else None

        def bad(why):
            return 400, envelope_error(400, why), {}

        window = arg("window") or "day"
        if window not in WINDOWS:
            return bad(f"Invalid window: {window}. Use one of day, hour, block.")
        if window == "block":
            return bad("window=block is not served by the sandbox.")
        if window not in windows:
            return bad(f"window={window} is not supported for this endpoint.")
        for name, allowed in required.items():
            given = arg(name)
            if given is None:
                return bad(f"Missing required parameter: {name}.")
            if given != allowed:
                return bad(f"Unsupported {name}: {given}.")
        try:
            limit = int(arg("limit")) if arg("limit") is not None else DEFAULT_LIMIT
        except ValueError:
            return bad("limit must be an integer.")
        if not 1 <= limit <= MAX_LIMIT:
            return bad(f"limit must be between 1 and {MAX_LIMIT}.")
        try:
            t_from = parse_time(arg("from")) if arg("from") is not None else None
            t_to = parse_time(arg("to")) if arg("to") is not None else None
        except ValueError:
            return bad("from/to must be YYYYMMDD or YYYYMMDDTHHMMSS.")

        step = DAY if window == "day" else HOUR
        first = self.series.first_day * DAY // step  # in window units
        last = int(self.clock() // step) - 1  # the last completed window
        lo = -(-t_from // step) if t_from is not None else None
        hi = t_to // step if t_to is not None else None
        if hi is None:
            hi = last if lo is None else lo + limit - 1
        if lo is None or hi - lo + 1 > limit:
            lo = hi - limit + 1  # the newest `limit` rows of the range
        lo, hi = max(lo, first), min(hi, last)
        data = self._rows(window, lo, hi, fields) if hi >= lo else []
        return 200, {"status": {"code": 200, "message": "success"},
                     "result": {"window": window, "data": data}}, {}

    def _rows(self, window: str, lo: int, hi: int, fields) -> list[dict]:
        """Rows for window units lo..hi inclusive, newest first."""
        if window == "day":
            values = dict(self.series.days(lo, hi), blocks=144)
            labels = np.datetime_as_string(np.arange(lo, hi + 1).astype("datetime64[D]"))
            key = "date"
        else:
            parts = [self.series.hours(d) for d in range(lo * HOUR // DAY, hi * HOUR // DAY + 1)]
            offset = (lo * HOUR // DAY) * 24
            values = {n: np.concatenate([p[n] for p in parts])[lo - offset : hi - offset + 1]
                      for n in parts[0]}
            values["blocks"] = 6
            labels = np.char.replace(
                np.datetime_as_string(np.arange(lo, hi + 1).astype("datetime64[h]").astype("datetime64[s]")),
                "T", " ",
            )
            key = "datetime"
        values = {n: (a.tolist() if isinstance(a, np.ndarray) else a) for n, a in values.items()}
        return [{key: str(labels[i]), **fields(values, i)} for i in range(len(labels) - 1, -1, -1)]


HOURLY_WINDOW = r"window=hour"


def deny_hourly(sandbox) -> None:
    """Make the sandbox's CryptoQuant plan lack `window=hour` (as the user's plan does today)."""
    sandbox.deny(CryptoQuant.prefix, HOURLY_WINDOW, "not_entitled")


def grant_hourly(sandbox) -> None:
    """Hourly access restored."""
    sandbox.grant(CryptoQuant.prefix, HOURLY_WINDOW)
