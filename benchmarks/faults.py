"""Fault-storm benchmark: do vendor faults cost retries, or partitions?

    .venv/bin/python benchmarks/faults.py                  # 5 vendors x 10/30/50% x 10 days (~3 min)
    .venv/bin/python benchmarks/faults.py --smoke          # coinbase, 30%, 2 days (CI)
    .venv/bin/python benchmarks/faults.py --vendors fred --rates 0.5 --days 10 --seed 3

An in-process `SandboxServer` (vendor rate limits off: this measures faults, not pacing) serves each
vendor; each UTC day is ingested with the project's vendor functions, as the ingest assets call them
(Coinbase `fetch_candles`, CoinAPI `fetch_ohlcv`, CryptoQuant `fetch_metrics`, FRED `fetch_vintages`
+ `published_on` for the 12 series, Alpha Vantage `fetch_series` for every series). First without
faults (the baseline), then per fault rate with a seeded mix, every kind equally likely: 429 (with
Retry-After), 500, 503, resets, timeouts, truncated, malformed (HTML with a JSON type), html_200,
gzip_corrupt, wrong_shape, short_page, trickle, drop_mid_body. Clients keep the project's retry policy
with short waits (backoff 10-50 ms, 0.5 s read timeout, 1 s whole-response deadline).

Per vendor and rate it prints the partitions that came out identical to the baseline, failed
cleanly (a VendorError, nothing returned), partial (a strict subset of the baseline rows) or
differing (anything else), and the retry cost: requests per partition against the baseline's.
Goal at 50%: >= 99% identical, 0 partial or differing. The last line is `BENCH_JSON {...}`, with each
cell's injected faults by kind and its failures' messages.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
import warnings
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable without installing it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

with warnings.catch_warnings():  # importing asset modules builds Dagster definitions (warning noise)
    warnings.simplefilter("ignore")
    from btc_platform.defs.fred.assets import published_on, realtime_window  # noqa: E402
from btc_platform.sandbox import FaultRule, SandboxServer  # noqa: E402
from btc_platform.sandbox.registry import SANDBOX_KEYS  # noqa: E402
from btc_platform.vendors import alphavantage, coinapi, coinbase, cryptoquant, fred  # noqa: E402
from btc_platform.vendors.errors import VendorError  # noqa: E402

VENDORS = ("coinbase", "coinapi", "cryptoquant", "fred", "alphavantage")
RATES = (0.1, 0.3, 0.5)
KINDS = ("429", "500", "503", "reset", "timeout", "truncated", "malformed", "html_200", "gzip_corrupt",
         "wrong_shape", "short_page", "trickle", "drop_mid_body")
START = date(2024, 3, 4)
GOAL_IDENTICAL = 0.99
# Short waits so a storm runs in minutes; the policy (what is retried, what is final) is the project's.
CLIENT = {"rate_per_s": 1000.0, "burst": 100, "backoff_initial_s": 0.01, "backoff_max_s": 0.05,
          "timeout_s": 0.5, "attempt_deadline_s": 1.0, "budget_s": 60.0}
FAULT_TIMING = {"retry_after": 0.05, "delay_s": 0.8}  # timeouts outlast the 0.5 s read timeout
TRICKLE_S = 1.5  # each piece within the read timeout, the whole past the 1 s deadline


def storm(vendor: str, rate: float, kinds: tuple[str, ...] = KINDS) -> list[FaultRule]:
    """Rules that together fault `rate` of the vendor's requests, each kind equally likely: the i-th
    rule fires with p/k over what the earlier rules left."""
    share = rate / len(kinds)
    return [FaultRule(kind, vendor=vendor, probability=min(1.0, share / (1 - i * share)),
                      **(dict(FAULT_TIMING, delay_s=TRICKLE_S) if kind == "trickle" else FAULT_TIMING))
            for i, kind in enumerate(kinds)]


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def ingest_day(vendor: str, http, day: date) -> pd.DataFrame:
    """One partition with the vendor functions the ingest asset uses."""
    start, end = day_bounds(day)
    key = f"{day:%F}"
    if vendor == "coinbase":
        return coinbase.fetch_candles(http, "BTC-USD", start, end, partition=f"{key}|BTC-USD").frame
    if vendor == "coinapi":
        return coinapi.fetch_ohlcv(http, coinapi.SPOT_SYMBOLS["BTC-USD"], start, end, symbol="BTC-USD",
                                   partition=f"{key}|BTC-USD").frame
    if vendor == "cryptoquant":
        return cryptoquant.fetch_metrics(http, start, end, partition=key).frame
    if vendor == "fred":
        rt_start, rt_end = realtime_window(day, day)
        frames = [fred.fetch_vintages(http, s, realtime_start=rt_start, realtime_end=rt_end, partition=key,
                                      api_key=SANDBOX_KEYS["fred"]).frame for s in fred.SERIES]
        return published_on(pd.concat(frames, ignore_index=True), day)
    if vendor == "alphavantage":
        frames = [alphavantage.fetch_series(http, name, start=start, end=end, outputsize="full", partition=key,
                                            api_key=SANDBOX_KEYS["alphavantage"]).frame
                  for name in alphavantage.SERIES]
        return pd.concat(frames, ignore_index=True)
    raise ValueError(f"unknown vendor {vendor!r}; expected one of {VENDORS}")


def make_http(vendor: str, sandbox: SandboxServer):
    url = sandbox.vendor_url(vendor)
    if vendor == "coinbase":
        return coinbase.make_http(url, **CLIENT)
    if vendor in ("coinapi", "cryptoquant", "fred", "alphavantage"):
        module = {"coinapi": coinapi, "cryptoquant": cryptoquant, "fred": fred, "alphavantage": alphavantage}[vendor]
        return module.make_http(url, SANDBOX_KEYS[vendor], **CLIENT)
    raise ValueError(vendor)


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame without its ingestion time, rows in a fixed order."""
    f = frame.drop(columns=[c for c in ("ingested_at",) if c in frame.columns])
    return f.sort_values(list(f.columns), kind="stable").reset_index(drop=True)


def outcome(got: pd.DataFrame | None, baseline: pd.DataFrame) -> str:
    if got is None:
        return "failed_cleanly"
    got = comparable(got)
    if got.equals(baseline):
        return "identical"
    if len(got) < len(baseline) and list(got.columns) == list(baseline.columns):
        kept = got.merge(baseline.drop_duplicates(), how="left", indicator=True)
        if (kept["_merge"] == "both").all():
            return "partial"
    return "differing"


def run_vendor(vendor: str, sandbox: SandboxServer, days: list[date], rates: tuple[float, ...], seed: int,
               kinds: tuple[str, ...] = KINDS, log=print) -> dict:
    def sent() -> int:
        return sum(1 for e in sandbox.request_log if e["vendor"] == vendor)

    sandbox.clear_faults()
    baseline, before, t0 = {}, sent(), time.perf_counter()
    with make_http(vendor, sandbox) as http:
        for day in days:
            baseline[day] = comparable(ingest_day(vendor, http, day))
    base_requests = (sent() - before) / len(days)
    result = {"baseline": {"requests_per_partition": round(base_requests, 2),
                           "rows": int(sum(len(f) for f in baseline.values())),
                           "wall_s": round(time.perf_counter() - t0, 2)}, "cells": {}}
    for i, rate in enumerate(rates):
        # Its own draws per vendor and rate: one seed would give every vendor the same fault sequence.
        sandbox.set_faults(storm(vendor, rate, kinds), seed=seed * 1000 + VENDORS.index(vendor) * 10 + i)
        counts, errors = Counter(), Counter()
        before, t0 = sent(), time.perf_counter()
        with make_http(vendor, sandbox) as http:
            for day in days:
                try:
                    got = ingest_day(vendor, http, day)
                except VendorError as e:
                    got = None
                    errors[f"{type(e).__name__}: {e.detail[:70]}"] += 1
                counts[outcome(got, baseline[day])] += 1
        faults = Counter(e["fault"] for e in sandbox.request_log[-(sent() - before):] if e["vendor"] == vendor)
        sandbox.clear_faults()
        requests = (sent() - before) / len(days)
        cell = {"partitions": len(days), **{k: counts.get(k, 0) for k in
                                             ("identical", "failed_cleanly", "partial", "differing")},
                "requests_per_partition": round(requests, 2),
                "retry_cost": round(requests / base_requests, 2) if base_requests else None,
                "faults_injected": sum(v for k, v in faults.items() if k),
                "fault_share": round(sum(v for k, v in faults.items() if k) / max(1, sum(faults.values())), 3),
                "faults_by_kind": dict(sorted((k, v) for k, v in faults.items() if k)),
                "wall_s": round(time.perf_counter() - t0, 2), "errors": dict(errors)}
        result["cells"][f"{rate:g}"] = cell
        log(f"  {vendor:<12} {rate:>4.0%}  identical {cell['identical']}/{len(days)}  failed cleanly "
            f"{cell['failed_cleanly']}  partial {cell['partial']}  differing {cell['differing']}  "
            f"requests/partition {requests:.1f} vs {base_requests:.1f} ({cell['retry_cost']}x)  "
            f"faults {cell['fault_share']:.0%} of requests  {cell['wall_s']:.1f}s", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vendors", nargs="+", default=list(VENDORS), choices=VENDORS)
    p.add_argument("--rates", nargs="+", type=float, default=list(RATES))
    p.add_argument("--days", type=int, default=10)  # 50 partitions at the top rate: one failure reads 98%
    p.add_argument("--start", type=date.fromisoformat, default=START)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--without", nargs="+", default=[], choices=KINDS, help="leave these kinds out of the mix")
    p.add_argument("--smoke", action="store_true", help="coinbase only, 30%%, 2 days")
    args = p.parse_args(argv)
    if args.smoke:
        args.vendors, args.rates, args.days = ["coinbase"], [0.3], 2
    if args.days < 1 or not all(0 <= r < 1 for r in args.rates):
        p.error("--days must be >= 1 and every rate within [0, 1)")
    days = [args.start + timedelta(days=i) for i in range(args.days)]
    kinds = tuple(k for k in KINDS if k not in args.without)
    logging.basicConfig(level=logging.ERROR)  # every retry logs a warning: thousands in a storm
    limits = {v: None for v in ("coinbase", "coinapi", "cryptoquant", "fred", "alphavantage", "feargreed")}
    t0 = time.perf_counter()
    results = {}
    with SandboxServer(rate_limit_per_s=math.inf, rate_limits=limits) as sandbox:
        sandbox.vendors["alphavantage"].configure(per_minute=None, per_day=None)
        print(f"fault storm: {args.days} partitions from {args.start}, seed {args.seed}, kinds {', '.join(kinds)}")
        for vendor in args.vendors:
            results[vendor] = run_vendor(vendor, sandbox, days, tuple(args.rates), args.seed, kinds)
    total = Counter()
    for r in results.values():
        for rate, cell in r["cells"].items():
            if float(rate) == max(args.rates):
                total.update({k: cell[k] for k in ("partitions", "identical", "partial", "differing")})
    share = total["identical"] / total["partitions"] if total["partitions"] else 0.0
    verdict = "ok" if share >= GOAL_IDENTICAL and not (total["partial"] or total["differing"]) else "BELOW GOAL"
    print(f"at {max(args.rates):.0%}: {total['identical']}/{total['partitions']} identical ({share:.1%}), "
          f"{total['partial']} partial, {total['differing']} differing (goal >= {GOAL_IDENTICAL:.0%} identical, "
          f"0 partial or differing: {verdict}); {time.perf_counter() - t0:.0f}s in all")
    print("BENCH_JSON " + json.dumps({"days": args.days, "start": f"{args.start}", "seed": args.seed,
                                      "kinds": list(kinds), "vendors": results,
                                      "goal": {"identical_share_at_max_rate": share, "verdict": verdict}},
                                     sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
