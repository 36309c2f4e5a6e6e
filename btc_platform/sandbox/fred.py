"""FRED / ALFRED twin: `GET /fred/series/observations` and `GET /fred/series/vintagedates`.

Values are the REAL series from `../shared/data/fred/<SERIES>.csv` (header `date,value`, an empty value
is FRED's missing marker and is served as "."), or, where a file is absent, a deterministic generated
series of the right frequency. Vintages are synthetic but consistent, so that point-in-time (as-of)
reads have something to do. Each observation has a list of release dates r0 < r1 < ... < rR; the value
at r_R is the final (CSV) value and earlier releases differ from it by a few units that shrink to zero:

- daily market series: published the next business day (DTWEXBGS: the next Monday, like the weekly
  H.10 release), never revised;
- CPIAUCSL: the 13th of the next month (rolled to a business day), revised once at the next release;
- UNRATE: the first Friday of the next month, revised once at the next release;
- FEDFUNDS: the first business day of the next month, never revised;
- M2SL: weekly H.6 releases on Thursdays until 2021 (first print about two weeks after month end, then
  revised on each of the next 4 Thursdays), monthly from 2021 (4th Tuesday, revised once) -- more
  than 2000 vintage dates since 1980, so a full-history vintage request needs splitting;
- GDP: advance estimate ~30 days after quarter end, second ~60 days, third (final) ~90 days.

Business days are Monday to Friday (no holiday calendar). A release dated after "today" (the twin's
clock) does not exist yet, and the last known vintage of an observation is open-ended (9999-12-31).

As FRED does, a request's real-time window clips each row's `realtime_start`/`realtime_end` (the
default window is today..today), and a request whose real-time window holds more than 2000 of the
series' vintage dates is refused with 400 ("... exceeds the maximum number of vintage dates allowed
(2000)."). Errors are `{"error_code": N, "error_message": "..."}`. The key is the `api_key` query
parameter: missing -> 400 "Variable api_key is not set", wrong -> 400 "... is not registered".
Entitlements (`SandboxServer.deny`): FRED has no plans; we answer "not_entitled" with 423 Locked (a
series withheld from the API) and "no_access" with the 400 "not registered" body (a revoked key).
"""

from __future__ import annotations

import csv
import re
import threading
import time
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "fred"

REALTIME_MIN = np.datetime64("1776-07-04", "D")
REALTIME_MAX = np.datetime64("9999-12-31", "D")
MAX_LIMIT = 100_000
MAX_VINTAGE_DATES_LIMIT = 10_000
MAX_VINTAGE_DATES = 2000
API_KEY_HELP = "Read https://fred.stlouisfed.org/docs/api/api_key.html for more information."

OBSERVATIONS = "/fred/series/observations"
VINTAGEDATES = "/fred/series/vintagedates"

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ONE_DAY = np.timedelta64(1, "D")


@dataclass(frozen=True)
class Schedule:
    """How the twin publishes one series (and how it generates it when no real file exists)."""

    freq: str  # "d", "m", "q"
    publish: str  # release rule, see `release_dates`
    revisions: int  # releases after the first (0 = never revised)
    level: float  # generated series only: start level, daily relative volatility, decimals, first date
    vol: float
    decimals: int
    start: str = "1980-01-01"


SCHEDULES: dict[str, Schedule] = {
    "DGS10": Schedule("d", "next_bday", 0, 10.5, 0.01, 2),
    "DGS2": Schedule("d", "next_bday", 0, 11.0, 0.012, 2),
    "T10Y2Y": Schedule("d", "next_bday", 0, 0.5, 0.05, 2),
    "VIXCLS": Schedule("d", "next_bday", 0, 20.0, 0.05, 2, "1990-01-02"),
    "SP500": Schedule("d", "next_bday", 0, 2000.0, 0.01, 2, "2016-01-01"),
    "DTWEXBGS": Schedule("d", "next_monday", 0, 100.0, 0.003, 4, "2006-01-02"),
    "DCOILWTICO": Schedule("d", "next_bday", 0, 25.0, 0.02, 2, "1986-01-02"),
    "CPIAUCSL": Schedule("m", "day13", 1, 78.0, 0.003, 3),
    "UNRATE": Schedule("m", "first_friday", 1, 6.3, 0.02, 1),
    "FEDFUNDS": Schedule("m", "first_bday", 0, 13.8, 0.03, 2),
    "M2SL": Schedule("m", "h6", 4, 1480.0, 0.005, 1),
    "GDP": Schedule("q", "gdp", 2, 2790.0, 0.015, 3),
}


def _weekday(d: np.ndarray) -> np.ndarray:
    """Monday = 0 (1970-01-01 was a Thursday)."""
    return (d.astype("int64") + 3) % 7


def _next_month(d: np.ndarray, k: int = 1) -> np.ndarray:
    return (d.astype("datetime64[M]") + k).astype("datetime64[D]")


def _bday(d: np.ndarray) -> np.ndarray:
    return np.busday_offset(d, 0, roll="forward")


def _first_weekday(d: np.ndarray, weekday: int) -> np.ndarray:
    """The first day on or after d that is `weekday` (Monday = 0)."""
    return d + ((weekday - _weekday(d)) % 7).astype("timedelta64[D]")


def _monthly_release(month: np.ndarray, rule: str) -> np.ndarray:
    """The first release date of monthly observations (dates are first days of months)."""
    nm = _next_month(month)
    if rule == "day13":
        return _bday(nm + np.timedelta64(12, "D"))
    if rule == "first_friday":
        return _first_weekday(nm, 4)
    if rule == "first_bday":
        return _bday(nm)
    if rule == "h6_monthly":  # 4th Tuesday of the next month
        return _first_weekday(nm, 1) + np.timedelta64(21, "D")
    if rule == "h6_weekly":  # first Thursday two weeks after the month's end
        return _first_weekday(nm + np.timedelta64(13, "D"), 3)
    raise ValueError(rule)


def release_dates(dates: np.ndarray, sched: Schedule) -> tuple[np.ndarray, np.ndarray]:
    """Release dates per observation as an (n, R+1) array, and how many of the R revisions each
    observation gets (its releases 0..k are strictly increasing; later columns are unused)."""
    n, r = dates.size, sched.revisions
    revisions = np.full(n, r, "int64")
    if sched.publish == "next_bday":
        return np.busday_offset(dates, 1, roll="forward").reshape(n, 1), revisions
    if sched.publish == "next_monday":
        return (dates + (7 - _weekday(dates)).astype("timedelta64[D]")).reshape(n, 1), revisions
    if sched.publish in ("day13", "first_friday", "first_bday"):
        # each revision lands on the next month's release
        rel = np.stack([_monthly_release(_next_month(dates, k), sched.publish) for k in range(r + 1)], axis=1)
        return rel, revisions
    if sched.publish == "h6":
        # weekly regime: first print, then revised on each of the next r Thursdays
        first = _monthly_release(dates, "h6_weekly")
        rel = np.stack([first + np.timedelta64(7 * k, "D") for k in range(r + 1)], axis=1)
        # monthly regime (from 2021): revised once, at the next monthly release
        monthly = dates >= np.datetime64("2021-01-01")
        for k in range(2):
            rel[monthly, k] = _monthly_release(_next_month(dates[monthly], k), "h6_monthly")
        revisions[monthly] = min(1, r)
        return rel, revisions
    if sched.publish == "gdp":
        quarter_end = _next_month(dates, 3) - _ONE_DAY
        rel = np.stack([_bday(quarter_end + np.timedelta64(30 * (k + 1), "D")) for k in range(r + 1)], axis=1)
        return rel, revisions
    raise ValueError(f"unknown release rule {sched.publish!r}")


@dataclass
class VintageTable:
    """Every vintage row of one series (cap-free, clock-free): one row per (date, real-time period)."""

    date: np.ndarray  # datetime64[D], observation date
    start: np.ndarray  # datetime64[D], first day this value was known
    next_start: np.ndarray  # datetime64[D], start of the next vintage of the observation, or REALTIME_MAX
    value: np.ndarray  # object, FRED value strings ("." = missing)

    def known(self, today: np.datetime64) -> "VintageTable":
        """The table as FRED shows it on `today`: later releases do not exist yet."""
        keep = self.start <= today
        nxt = np.where(self.next_start[keep] > today, REALTIME_MAX, self.next_start[keep])
        return VintageTable(self.date[keep], self.start[keep], nxt, self.value[keep])

    @property
    def end(self) -> np.ndarray:
        return np.where(self.next_start == REALTIME_MAX, REALTIME_MAX, self.next_start - _ONE_DAY)

    def vintage_dates(self) -> np.ndarray:
        return np.unique(self.start)


def build_vintages(series_id: str, dates: np.ndarray, values: list[str], sched: Schedule) -> VintageTable:
    """Expand final values into vintages per `sched` (deterministic: seeded by the series id).

    Release k of an observation with R revisions is `final + (R - k) * unit`, `unit` being one
    last-decimal step or about 0.1% of the value, with a seeded sign: every release differs from the
    one before and the last one is the real value. A missing value (".") is released once, never revised.
    """
    n = dates.size
    rel, revisions = release_dates(dates, sched)
    missing = np.array([v == "." for v in values], bool)
    revisions = np.where(missing, 0, revisions)
    decimals = np.array([len(v.split(".", 1)[1]) if "." in v and v != "." else 0 for v in values], "int64")
    final = np.array([float(v) if v != "." else 0.0 for v in values], "float64")
    rng = np.random.default_rng(zlib.crc32(f"fred-vintages:{series_id}".encode()))
    step = 10.0 ** (-decimals)
    unit = np.maximum(1.0, np.round(np.abs(final) * 0.001 / step)) * step * rng.choice([-1.0, 1.0], size=n)

    parts = []
    for k in range(int(revisions.max(initial=0)) + 1):
        idx = np.flatnonzero(revisions >= k)
        last = revisions[idx] == k
        nxt = np.where(last, REALTIME_MAX, rel[idx, min(k + 1, rel.shape[1] - 1)])
        early = final[idx] + (revisions[idx] - k) * unit[idx]
        vals = [values[i] if is_last else f"{x:.{d}f}"
                for i, is_last, x, d in zip(idx.tolist(), last.tolist(), early.tolist(), decimals[idx].tolist())]
        parts.append((dates[idx], rel[idx, k], nxt, np.array(vals, object)))
    date_, start_, next_, value_ = (np.concatenate([p[j] for p in parts]) for j in range(4))
    order = np.lexsort((start_, date_))
    return VintageTable(date_[order], start_[order], next_[order], value_[order])


def read_csv_series(path: Path) -> tuple[np.ndarray, list[str]]:
    """`date,value` rows; an empty value is FRED's "."."""
    dates, values = [], []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        if [h.strip().lower() for h in header[:2]] != ["date", "value"]:
            raise ValueError(f"{path}: expected header date,value, got {header}")
        for row in reader:
            if not row or not row[0].strip():
                continue
            dates.append(row[0].strip())
            v = row[1].strip() if len(row) > 1 else ""
            values.append(v if v else ".")
    return np.array(dates, "datetime64[D]"), values


def generated_series(series_id: str, sched: Schedule, end: str = "2025-12-31") -> tuple[np.ndarray, list[str]]:
    """A deterministic random walk with the series' frequency; daily series miss Jan 1 and Dec 25."""
    start = np.datetime64(sched.start, "D")
    stop = np.datetime64(end, "D")
    if sched.freq == "d":
        dates = np.arange(start, stop + _ONE_DAY, dtype="datetime64[D]")
        dates = dates[np.is_busday(dates)]
    else:
        step = 1 if sched.freq == "m" else 3
        months = np.arange(start.astype("datetime64[M]"), stop.astype("datetime64[M]") + 1, step)
        dates = months.astype("datetime64[D]")
    rng = np.random.default_rng(zlib.crc32(f"fred-values:{series_id}".encode()))
    level = sched.level * np.exp(np.cumsum(rng.normal(0.0, sched.vol, dates.size)))
    month = dates.astype("datetime64[M]").astype("int64") % 12 + 1
    day = (dates - dates.astype("datetime64[M]").astype("datetime64[D]")).astype("int64") + 1
    holiday = (((month == 1) & (day == 1)) | ((month == 12) & (day == 25))) & (sched.freq == "d")
    values = ["." if h else f"{v:.{sched.decimals}f}" for v, h in zip(level.tolist(), holiday.tolist())]
    return dates, values


def _error(status: int, message: str) -> tuple[int, dict, dict]:
    return status, {"error_code": status, "error_message": message}, {}


class _BadRequest(Exception):
    pass


class Fred:
    prefix = "fred"
    rate_limited_body = {"error_code": 429, "error_message": "Too Many Requests.  Exceeded Rate Limit"}
    # An envelope whose observations lack `value`: what a changed API or a bad proxy would send.
    wrong_shape_body = {
        "realtime_start": "2024-01-02", "realtime_end": "2024-01-02", "count": 1, "offset": 0,
        "limit": 100000, "observations": [{"date": "2024-01-02", "val": "4.0"}],
    }

    def __init__(
        self,
        data_dir: str | Path | None = DEFAULT_DATA_DIR,
        *,
        rate_limit: tuple[float, int] | None = (2.0, 120),
        today: Callable[[], date] | None = None,
        max_vintage_dates: int = MAX_VINTAGE_DATES,
    ) -> None:
        self.data_dir = Path(data_dir) if data_dir else None
        self.rate_limit = rate_limit  # 120 requests per minute
        self._today = today or (lambda: datetime.fromtimestamp(time.time(), timezone.utc).date())
        self.max_vintage_dates = max_vintage_dates
        self._tables: dict[str, VintageTable] = {}
        self._lock = threading.Lock()

    # -- twin interface -------------------------------------------------------------------------
    @staticmethod
    def error_body(status: int, message: str) -> dict:
        return {"error_code": status, "error_message": message}

    @staticmethod
    def credential(req) -> str | None:
        given = req.query.get("api_key")
        return given[0] if given and given[0] else None

    @staticmethod
    def auth_error(missing: bool) -> tuple[int, dict]:
        if missing:
            msg = f"Bad Request.  Variable api_key is not set.  {API_KEY_HELP}"
        else:
            msg = f"Bad Request.  The value for variable api_key is not registered.  {API_KEY_HELP}"
        return 400, {"error_code": 400, "error_message": msg}

    def entitlement_error(self, kind: str, req) -> tuple[int, dict]:
        if kind == "no_access":
            return self.auth_error(missing=False)
        series = (req.query.get("series_id") or [""])[0]
        return 423, {"error_code": 423,
                     "error_message": f"Locked.  The series {series} is currently not available through the API."}

    @staticmethod
    def duplicate_rows(obj, rng):
        for key in ("observations", "vintage_dates"):
            if isinstance(obj, dict) and isinstance(obj.get(key), list):
                rows = obj[key] + obj[key]
                rng.shuffle(rows)
                return {**obj, key: rows}
        return obj

    def handle(self, req) -> tuple[int, object, dict]:
        path = req.path.rstrip("/")
        if req.method != "GET" or path not in (OBSERVATIONS, VINTAGEDATES):
            return _error(404, "Not Found")
        try:
            if path == OBSERVATIONS:
                return 200, self.observations(req.query), {}
            return 200, self.vintagedates(req.query), {}
        except _BadRequest as e:
            return _error(400, f"Bad Request.  {e}")

    # -- data -----------------------------------------------------------------------------------
    def series_ids(self) -> list[str]:
        return sorted(SCHEDULES)

    def table(self, series_id: str) -> VintageTable:
        """Every vintage of a series, regardless of the clock or the 2000-date cap."""
        with self._lock:
            if series_id not in self._tables:
                sched = SCHEDULES[series_id]
                path = self.data_dir / f"{series_id}.csv" if self.data_dir else None
                if path is not None and path.exists():
                    dates, values = read_csv_series(path)
                else:
                    dates, values = generated_series(series_id, sched)
                self._tables[series_id] = build_vintages(series_id, dates, values, sched)
            return self._tables[series_id]

    def today(self) -> np.datetime64:
        return np.datetime64(self._today(), "D")

    # -- endpoints ------------------------------------------------------------------------------
    def _series(self, query) -> str:
        series_id = _arg(query, "series_id")
        if series_id is None:
            raise _BadRequest("Variable series_id is not set.")
        if series_id not in SCHEDULES:
            raise _BadRequest("The series does not exist.")
        file_type = _arg(query, "file_type") or "xml"
        if file_type not in ("xml", "json"):
            raise _BadRequest("Variable file_type is not one of the following: 'xml', 'json'.")
        if file_type != "json":
            raise _BadRequest("This sandbox serves file_type=json only.")
        return series_id

    def observations(self, query) -> dict:
        series_id = self._series(query)
        today = self.today()
        rt_start = _date_arg(query, "realtime_start", today)
        rt_end = _date_arg(query, "realtime_end", today)
        obs_start = _date_arg(query, "observation_start", REALTIME_MIN)
        obs_end = _date_arg(query, "observation_end", REALTIME_MAX)
        if rt_start > rt_end:
            raise _BadRequest("Variable realtime_start can not be after variable realtime_end.")
        if obs_start > obs_end:
            raise _BadRequest("Variable observation_start can not be after variable observation_end.")
        limit = _int_arg(query, "limit", MAX_LIMIT, 1, MAX_LIMIT)
        offset = _int_arg(query, "offset", 0, 0, None)
        sort_order = _choice(query, "sort_order", ("asc", "desc"))
        output_type = _int_arg(query, "output_type", 1, 1, 4)
        if output_type not in (1, 4):
            raise _BadRequest("This sandbox implements output_type 1 and 4 only.")
        units = _arg(query, "units") or "lin"
        if units != "lin":
            raise _BadRequest("This sandbox implements units=lin only.")

        t = self.table(series_id).known(today)
        vintage_dates = t.vintage_dates()
        n_dates = int(((vintage_dates >= rt_start) & (vintage_dates <= rt_end)).sum())
        if n_dates > self.max_vintage_dates:
            raise _BadRequest(
                f"There are {n_dates} vintage dates in the specified real-time period: "
                f"{rt_start} to {rt_end}.  This exceeds the maximum number of vintage dates allowed "
                f"({self.max_vintage_dates})."
            )
        end = t.end
        sel = (t.start <= rt_end) & (end >= rt_start) & (t.date >= obs_start) & (t.date <= obs_end)
        if output_type == 4:  # initial release only
            first = np.r_[True, t.date[1:] != t.date[:-1]]
            sel &= first
        idx = np.flatnonzero(sel)
        if sort_order == "desc":  # newest observation first, real-time periods still ascending
            idx = idx[np.lexsort((t.start[idx], -t.date[idx].astype("int64")))]
        page = idx[offset: offset + limit]
        starts = np.datetime_as_string(np.maximum(t.start[page], rt_start))
        ends = np.datetime_as_string(np.minimum(end[page], rt_end))
        dates = np.datetime_as_string(t.date[page])
        values = t.value[page]
        return {
            "realtime_start": str(rt_start),
            "realtime_end": str(rt_end),
            "observation_start": str(obs_start),
            "observation_end": str(obs_end),
            "units": units,
            "output_type": output_type,
            "file_type": "json",
            "order_by": "observation_date",
            "sort_order": sort_order,
            "count": int(idx.size),
            "offset": offset,
            "limit": limit,
            "observations": [
                {"realtime_start": s, "realtime_end": e, "date": d, "value": v}
                for s, e, d, v in zip(starts.tolist(), ends.tolist(), dates.tolist(), values.tolist())
            ],
        }

    def vintagedates(self, query) -> dict:
        series_id = self._series(query)
        rt_start = _date_arg(query, "realtime_start", REALTIME_MIN)
        rt_end = _date_arg(query, "realtime_end", REALTIME_MAX)
        if rt_start > rt_end:
            raise _BadRequest("Variable realtime_start can not be after variable realtime_end.")
        limit = _int_arg(query, "limit", MAX_VINTAGE_DATES_LIMIT, 1, MAX_VINTAGE_DATES_LIMIT)
        offset = _int_arg(query, "offset", 0, 0, None)
        sort_order = _choice(query, "sort_order", ("asc", "desc"))
        dates = self.table(series_id).known(self.today()).vintage_dates()
        dates = dates[(dates >= rt_start) & (dates <= rt_end)]
        if sort_order == "desc":
            dates = dates[::-1]
        return {
            "realtime_start": str(rt_start),
            "realtime_end": str(rt_end),
            "order_by": "vintage_date",
            "sort_order": sort_order,
            "count": int(dates.size),
            "offset": offset,
            "limit": limit,
            "vintage_dates": np.datetime_as_string(dates[offset: offset + limit]).tolist(),
        }


def _arg(query, name: str) -> str | None:
    v = query.get(name)
    return v[0] if v and v[0] != "" else None


def _date_arg(query, name: str, default: np.datetime64) -> np.datetime64:
    raw = _arg(query, name)
    if raw is None:
        return default
    try:
        if not _DATE.match(raw):
            raise ValueError(raw)
        date.fromisoformat(raw)
    except ValueError:
        raise _BadRequest(f"Variable {name} is not a valid date in the format YYYY-MM-DD.") from None
    return np.datetime64(raw, "D")


def _int_arg(query, name: str, default: int, lo: int, hi: int | None) -> int:
    raw = _arg(query, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = lo - 1
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise _BadRequest(f"Variable {name} is not an integer {bound}.")
    return value


def _choice(query, name: str, allowed: tuple[str, ...]) -> str:
    raw = _arg(query, name) or allowed[0]
    if raw not in allowed:
        raise _BadRequest(f"Variable {name} is not one of the values: {', '.join(repr(a) for a in allowed)}.")
    return raw
