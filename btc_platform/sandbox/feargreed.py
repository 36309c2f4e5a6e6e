"""Crypto Fear & Greed Index twin (alternative.me): `GET /fng/?limit&format&date_format`.

Answers `{"name": "Fear and Greed Index", "data": [{"value": "40", "value_classification": "Fear",
"timestamp": "1551157200"}, ...], "metadata": {"error": null}}`, newest first, strings as the vendor
sends them, `time_until_update` (seconds to the next UTC midnight) on the newest item only; `limit`
defaults to 1 and 0 means the whole history; `date_format` us/cn/kr/world formats the timestamp.
Bad parameters answer HTTP 200 with `metadata.error` set and no data, as the vendor reports errors.

History: the REAL index replayed from `history_csv` (default: the shared
`fear_greed/fear_greed_index_alternative_me.csv`, header `Date,fng_value,fng_class`, when it exists),
its missing days left missing; otherwise a deterministic generated series from 2018-02-01 with the
vendor's class names and bands (as in the real record: Extreme Fear <= 25, Fear <= 46, Neutral <= 54,
Greed <= 75, Extreme Greed above). Days after the clock's today are never served.
"""

from __future__ import annotations

import threading
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

DAY = 86_400
NAME = "Fear and Greed Index"
FIRST_DAY = "2018-02-01"  # the vendor's history starts here
GENERATED_UNTIL = "2040-01-01"
DEFAULT_HISTORY_CSV = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "fear_greed" / "fear_greed_index_alternative_me.csv"
)
CLASSES = ("Extreme Fear", "Fear", "Neutral", "Greed", "Extreme Greed")
UPPER_BOUNDS = (25, 46, 54, 75, 100)
DATE_FORMATS = {"us": "%m-%d-%Y", "cn": "%Y-%m-%d", "kr": "%Y-%m-%d", "world": "%d-%m-%Y"}


def classify(value: int) -> str:
    for name, upper in zip(CLASSES, UPPER_BOUNDS):
        if value <= upper:
            return name
    raise ValueError(value)


def _unix_day(iso: str) -> int:
    return int(datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp()) // DAY


def body(data: list, error: str | None = None) -> dict:
    return {"name": NAME, "data": data, "metadata": {"error": error}}


class FearGreed:
    prefix = "feargreed"
    rate_limited_body = body([], "Rate limit exceeded: 60 requests per minute.")
    wrong_shape_body = {"name": NAME, "data": {"value": "40"}, "metadata": {"error": None}}

    def __init__(
        self,
        *,
        history_csv: str | Path | None = "auto",
        seed: int = 7,
        rate_limit: tuple[float, int] | None = (1.0, 60),
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`history_csv`: a real history file; "auto" (default) uses the shared file when present,
        None forces the generated series."""
        if isinstance(history_csv, str) and history_csv == "auto":
            history_csv = DEFAULT_HISTORY_CSV if DEFAULT_HISTORY_CSV.exists() else None
        self.history_csv = Path(history_csv) if history_csv is not None else None
        self.seed = int(seed)
        self.rate_limit = rate_limit
        self.clock = clock
        self._lock = threading.Lock()
        self._history: tuple[np.ndarray, np.ndarray, list[str]] | None = None

    @property
    def replaying(self) -> bool:
        return self.history_csv is not None

    # -- history --------------------------------------------------------------------------------
    def history(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(unix days ascending, values, class names) of the whole history, loaded once."""
        with self._lock:
            if self._history is None:
                self._history = self._load() if self.history_csv is not None else self._generate()
            return self._history

    def _load(self):
        import pandas as pd  # the twin needs pandas only to replay a file

        raw = pd.read_csv(self.history_csv)
        missing = {"Date", "fng_value", "fng_class"} - set(raw.columns)
        if missing:
            raise ValueError(f"{self.history_csv}: missing columns {sorted(missing)}")
        raw = raw.dropna(subset=["Date", "fng_value"]).drop_duplicates("Date").sort_values("Date")
        days = (pd.to_datetime(raw["Date"]).to_numpy("datetime64[D]").astype(np.int64))
        return days, raw["fng_value"].to_numpy(np.int64), [str(c) for c in raw["fng_class"]]

    def _generate(self):
        first, until = _unix_day(FIRST_DAY), _unix_day(GENERATED_UNTIL)
        rng = np.random.default_rng([self.seed, zlib.crc32(b"feargreed")])
        z = rng.standard_normal(until - first)
        x, values = 0.0, np.empty(z.size, np.int64)
        for i, zi in enumerate(z):  # AR(1) around 50: regimes of fear and greed lasting weeks
            x = 0.94 * x + 6.5 * zi
            values[i] = int(np.clip(round(50 + x), 0, 100))
        days = np.arange(first, until, dtype=np.int64)
        return days, values, [classify(int(v)) for v in values]

    # -- the twin interface ----------------------------------------------------------------------
    @staticmethod
    def error_body(status: int, message: str) -> dict:
        return body([], message)

    @staticmethod
    def duplicate_rows(obj, rng):
        if isinstance(obj, dict) and isinstance(obj.get("data"), list):
            rows = obj["data"] + obj["data"]
            rng.shuffle(rows)
            obj = {**obj, "data": rows}
        return obj

    def handle(self, req) -> tuple[int, object, dict]:
        if req.method != "GET" or req.path.rstrip("/") != "/fng":
            return 404, body([], "Not found"), {}

        def arg(name):
            v = req.query.get(name)
            return v[0] if v and v[0] != "" else None

        try:
            limit = int(arg("limit")) if arg("limit") is not None else 1
        except ValueError:
            return 200, body([], "Limit must be an integer."), {}
        if limit < 0:
            return 200, body([], "Limit must be 0 or more."), {}
        if (arg("format") or "json") != "json":
            return 200, body([], "The sandbox serves format=json only."), {}
        date_format = arg("date_format")
        if date_format is not None and date_format not in DATE_FORMATS:
            return 200, body([], "Invalid date_format: use us, cn, kr or world."), {}

        now = self.clock()
        today = int(now // DAY)
        days, values, classes = self.history()
        n = int(np.searchsorted(days, today, "right"))  # up to and including today
        lo = 0 if limit == 0 else max(0, n - limit)
        data = []
        for i in range(n - 1, lo - 1, -1):
            t = int(days[i]) * DAY
            stamp = (datetime.fromtimestamp(t, timezone.utc).strftime(DATE_FORMATS[date_format])
                     if date_format else str(t))
            item = {"value": str(int(values[i])), "value_classification": classes[i], "timestamp": stamp}
            if i == n - 1 and days[i] == today:
                item["time_until_update"] = str(int((today + 1) * DAY - now))
            data.append(item)
        return 200, body(data), {}
