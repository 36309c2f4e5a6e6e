"""Ingest benchmark: backfill 1-minute Coinbase candles from the sandbox, with the vendor's limit on.

    .venv/bin/python benchmarks/ingest.py                 # a year, 2023-01-01..2023-12-31 (~3 min)
    .venv/bin/python benchmarks/ingest.py --smoke         # 10 days, for CI
    .venv/bin/python benchmarks/ingest.py --days 30 --symbol ETH-USD

An in-process `SandboxServer()` answers with Coinbase's real limit (10 requests/s, burst 15, HTTP 429
beyond it). Each UTC day is fetched with the project's client (`coinbase.fetch_candles` through
`coinbase.make_http`) and written to a temporary lake with `Lake.write(candles_ref(...))`, as the
`coinbase_candles_1m` asset does. Printed, against the allowed rate as the baseline:

- requests sent (the sandbox's request log), wall seconds, requests/s achieved, and achieved/allowed
  (goal >= 0.9);
- 429s, and the longest run of consecutive 429s for one request (goal: no request rejected twice in
  a row, i.e. <= 1);
- candles written, lake bytes, bytes per candle, compared with the same frames as uncompressed CSV
  and as Parquet without compression (computed after the timed loop, so they cost it nothing);
- where the wall time went: limiter waits, HTTP round trips, parsing, lake writes, and the gaps
  between request arrivals at the server (within a day, and across day boundaries).

The last line is `BENCH_JSON {...}`, one JSON object with every figure, for machines.
Timing figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import parse_qs

if __package__ in (None, ""):  # run as a script: make the repository importable without installing it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

with warnings.catch_warnings():  # importing the asset module builds Dagster definitions (BetaWarning noise)
    warnings.simplefilter("ignore")
    from btc_platform.defs.coinbase.assets import candles_ref  # noqa: E402
from btc_platform.defs.partitions import day_bounds  # noqa: E402
from btc_platform.lake import Lake  # noqa: E402
from btc_platform.sandbox import SandboxServer  # noqa: E402
from btc_platform.vendors import coinbase  # noqa: E402
from btc_platform.vendors.http import RateLimiter  # noqa: E402

GOAL_RATIO = 0.9
GOAL_MAX_CONSECUTIVE_429 = 1
SMOKE_DAYS = 10
DEFAULT_START = date(2023, 1, 1)
DEFAULT_DAYS = 365


class Timer:
    """Accumulates seconds and counts per label; `wrap` times every call of a bound method."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.samples: dict[str, list[float]] = defaultdict(list)

    def add(self, label: str, seconds: float) -> None:
        self.seconds[label] += seconds
        self.samples[label].append(seconds)

    def wrap(self, label: str, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(label, time.perf_counter() - t0)

        return timed


def longest_429_run(log: list[dict]) -> int:
    """Longest run of consecutive 429s for one request: entries with the same path and query (its
    retries), in arrival order; a non-429 answer to that request ends its run."""
    run: dict[tuple[str, str], int] = defaultdict(int)
    longest = 0
    for e in log:
        key = (e["path"], e["query"])
        if e["status"] == 429:
            run[key] += 1
            longest = max(longest, run[key])
        else:
            run[key] = 0
    return longest


def _is_first_window(query: str) -> bool:
    start = parse_qs(query).get("start", [""])[0]
    return "T00:00:00" in start


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def baseline_bytes(frames) -> dict[str, int]:
    """The same frames in two naive encodings: CSV as pandas writes it, and Parquet uncompressed."""
    csv = parquet_plain = 0
    for frame in frames:
        csv += len(frame.to_csv(index=False).encode())
        table = pa.Table.from_pandas(frame, preserve_index=False)
        # The lake's schema (microsecond UTC timestamps), so only the encoding differs.
        schema = pa.schema([pa.field(f.name, pa.timestamp("us", tz="UTC")) if pa.types.is_timestamp(f.type) else f
                            for f in table.schema], metadata=table.schema.metadata)
        buf = io.BytesIO()
        pq.write_table(table.cast(schema), buf, compression="none")
        parquet_plain += len(buf.getvalue())
    return {"csv": csv, "parquet_uncompressed": parquet_plain}


def run(start: date, days: int, symbol: str, *, client_burst: int | None = None, write_latency_ms: float = 0.0) -> dict:
    allowed = coinbase.RATE_LIMIT_PER_S
    timer = Timer()
    frames = []
    candles = lake_bytes = client_requests = client_retries = 0
    limiter_reported_s = 0.0
    with SandboxServer() as sandbox, tempfile.TemporaryDirectory(prefix="bench-lake-") as tmp:
        lake = Lake(tmp)
        with coinbase.make_http(sandbox.coinbase_url()) as http:
            if client_burst is not None:  # what-if only: the project's client keeps make_http's limiter
                http.limiter = RateLimiter(http.rate_per_s, client_burst)
            # Instrument this client only (instance attributes): the code under test is unchanged.
            acquire = http.limiter.acquire

            def timed_acquire():
                nonlocal limiter_reported_s
                t0 = time.perf_counter()
                waited = acquire()
                timer.add("limiter", time.perf_counter() - t0)
                limiter_reported_s += waited
                return waited

            http.limiter.acquire = timed_acquire
            http._fetch = timer.wrap("http", http._fetch)  # one GET, its body read whole

            t_start = time.perf_counter()
            for i in range(days):
                day = start + timedelta(days=i)
                t0 = time.perf_counter()
                d_start, d_end = day_bounds(day)
                key = f"{day:%F}|{symbol}"
                fetched = coinbase.fetch_candles(http, symbol, d_start, d_end, partition=key)
                t1 = time.perf_counter()
                written = lake.write(candles_ref(day, symbol), fetched.frame)
                if write_latency_ms:  # what-if: an object store's upload latency (gs:// lake)
                    time.sleep(write_latency_ms / 1000)
                t2 = time.perf_counter()
                timer.add("fetch", t1 - t0)
                timer.add("write", t2 - t1)
                candles += written.rows
                lake_bytes += written.bytes
                frames.append(fetched.frame)
            wall_s = time.perf_counter() - t_start
            client_requests, client_retries = http.requests_sent, http.retries
        log = [e for e in sandbox.request_log if e["vendor"] == "coinbase"]

    naive = baseline_bytes(frames)
    requests = len(log)
    rejected = sum(1 for e in log if e["status"] == 429)
    achieved = requests / wall_s if wall_s > 0 else 0.0
    arrivals = [e["t"] for e in log]
    span_s = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    # The gap before a day's first window (start at midnight) spans the previous day's frame
    # building and lake write; the others are request to request.
    first_of_day = [_is_first_window(e["query"]) for e in log]
    boundary = [g for k, g in enumerate(gaps, start=1) if first_of_day[k] and log[k]["query"] != log[k - 1]["query"]]
    within = [g for k, g in enumerate(gaps, start=1) if not (first_of_day[k] and log[k]["query"] != log[k - 1]["query"])]
    http_s = timer.seconds["http"]
    limiter_s = timer.seconds["limiter"]
    fetch_s = timer.seconds["fetch"]
    write_s = timer.seconds["write"]
    return {
        "symbol": symbol,
        "start": f"{start:%F}",
        "days": days,
        "allowed_rps": allowed,
        "allowed_burst_server": 15,
        "client_burst": http.limiter.burst,
        "what_if": {"client_burst": client_burst, "write_latency_ms": write_latency_ms},
        "requests": requests,
        "client_requests": client_requests,
        "client_retries": client_retries,
        "wall_s": round(wall_s, 3),
        "achieved_rps": round(achieved, 4),
        "ratio": round(achieved / allowed, 4),
        "ratio_goal": GOAL_RATIO,
        "steady_rps": round((requests - 1) / span_s, 4) if span_s > 0 else None,
        "rejected_429": rejected,
        "max_consecutive_429": longest_429_run(log),
        "candles": candles,
        "lake_bytes": lake_bytes,
        "bytes_per_candle": round(lake_bytes / candles, 3) if candles else None,
        "csv_bytes_per_candle": round(naive["csv"] / candles, 3) if candles else None,
        "parquet_plain_bytes_per_candle": round(naive["parquet_uncompressed"] / candles, 3) if candles else None,
        "time": {
            "limiter_wait_s": round(limiter_s, 3),
            "limiter_reported_wait_s": round(limiter_reported_s, 3),
            "http_s": round(http_s, 3),
            "http_p50_ms": round(1000 * pct(timer.samples["http"], 0.5), 2),
            "http_p99_ms": round(1000 * pct(timer.samples["http"], 0.99), 2),
            "http_max_ms": round(1000 * max(timer.samples["http"], default=0.0), 2),
            "parse_and_frame_s": round(fetch_s - http_s - limiter_s, 3),
            "lake_write_s": round(write_s, 3),
            "lake_write_p50_ms": round(1000 * pct(timer.samples["write"], 0.5), 2),
            "other_s": round(wall_s - fetch_s - write_s, 3),
        },
        "gaps_ms": {
            "within_day_mean": round(1000 * statistics.fmean(within), 3) if within else None,
            "within_day_p99": round(1000 * pct(within, 0.99), 3) if within else None,
            "day_boundary_mean": round(1000 * statistics.fmean(boundary), 3) if boundary else None,
            "day_boundary_p99": round(1000 * pct(boundary, 0.99), 3) if boundary else None,
            "max": round(1000 * max(gaps), 3) if gaps else None,
        },
    }


def report(r: dict) -> str:
    t, g = r["time"], r["gaps_ms"]
    ok_rate = "ok" if r["ratio"] >= GOAL_RATIO else "BELOW GOAL"
    ok_429 = "ok" if r["max_consecutive_429"] <= GOAL_MAX_CONSECUTIVE_429 else "FAILS GOAL"
    end = date.fromisoformat(r["start"]) + timedelta(days=r["days"] - 1)

    def ratio(baseline):
        return f"{baseline / r['bytes_per_candle']:.2f}x smaller" if r["bytes_per_candle"] else "n/a"

    rows = [
        ("backfill", f"{r['symbol']} 1m candles, {r['start']}..{end:%F} ({r['days']} days)"),
        *([("WHAT-IF", f"client burst {r['client_burst']}, +{r['what_if']['write_latency_ms']:g} ms a lake write "
                             "(not the project's configuration)")]
          if r["what_if"]["client_burst"] is not None or r["what_if"]["write_latency_ms"] else []),
        ("baseline (allowed)", f"{r['allowed_rps']:g} requests/s (Coinbase public limit; sandbox burst {r['allowed_burst_server']})"),
        ("requests sent", f"{r['requests']} (sandbox log; client counted {r['client_requests']}, {r['client_retries']} retries)"),
        ("wall", f"{r['wall_s']:.2f} s"),
        ("achieved", f"{r['achieved_rps']:.3f} requests/s (steady, first..last arrival: {r['steady_rps']} /s)"),
        ("achieved / allowed", f"{r['ratio']:.3f}  (goal >= {GOAL_RATIO}: {ok_rate})"),
        ("429s", f"{r['rejected_429']}, longest run for one request {r['max_consecutive_429']} (goal <= 1: {ok_429})"),
        ("candles written", f"{r['candles']}"),
        ("lake bytes", f"{r['lake_bytes']} (Parquet, zstd)"),
        ("bytes/candle", f"{r['bytes_per_candle']}"),
        ("vs CSV", f"{r['csv_bytes_per_candle']} bytes/candle -> lake is {ratio(r['csv_bytes_per_candle'])}"),
        ("vs Parquet, uncompressed", f"{r['parquet_plain_bytes_per_candle']} bytes/candle -> lake is {ratio(r['parquet_plain_bytes_per_candle'])}"),
        ("time: limiter waits", f"{t['limiter_wait_s']:.2f} s (limiter's own sum of requested sleeps {t['limiter_reported_wait_s']:.2f} s)"),
        ("time: HTTP round trips", f"{t['http_s']:.2f} s (p50 {t['http_p50_ms']} ms, p99 {t['http_p99_ms']} ms, max {t['http_max_ms']} ms)"),
        ("time: parse + frame", f"{t['parse_and_frame_s']:.2f} s"),
        ("time: lake writes", f"{t['lake_write_s']:.2f} s (p50 {t['lake_write_p50_ms']} ms a day)"),
        ("time: other", f"{t['other_s']:.2f} s"),
        ("arrival gaps", f"within a day mean {g['within_day_mean']} ms (p99 {g['within_day_p99']}); "
                         f"across days mean {g['day_boundary_mean']} ms (p99 {g['day_boundary_p99']}); max {g['max']} ms"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--symbol", default="BTC-USD")
    p.add_argument("--start", type=date.fromisoformat, default=DEFAULT_START, help="first day (default 2023-01-01)")
    p.add_argument("--days", type=int, default=None, help=f"number of days (default {DEFAULT_DAYS})")
    p.add_argument("--smoke", action="store_true", help=f"a short run for CI: {SMOKE_DAYS} days")
    p.add_argument("--client-burst", type=int, default=None,
                   help="what-if: replace the client's limiter with one of this burst (default: make_http's, burst 1)")
    p.add_argument("--write-latency-ms", type=float, default=0.0,
                   help="what-if: sleep this long after each lake write, as an object-store upload would take")
    args = p.parse_args(argv)
    days = args.days if args.days is not None else (SMOKE_DAYS if args.smoke else DEFAULT_DAYS)
    if days < 1:
        p.error("--days must be at least 1")
    result = run(args.start, days, args.symbol, client_burst=args.client_burst, write_latency_ms=args.write_latency_ms)
    print(report(result), flush=True)
    print("BENCH_JSON " + json.dumps(result, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
