"""Missing or quiet: seeded holes in real liquid minutes, and genuine no-trade minutes, classified by
the quality rules (`monitoring.quality.summarize_candles`) against the rule before liquidity profiles.

    .venv/bin/python benchmarks/quality.py                 # 30 real days, 20 holes of 1-10 minutes a day
    .venv/bin/python benchmarks/quality.py --smoke         # 3 days (CI)

Holes: real Binance BTCUSDT 1-minute candles (../shared/data/candles_1m_btcusdt: every minute traded),
with `--holes` seeded runs of 1-10 minutes cut out of every day, never touching. Printed: the share of
holes classed missing (goal >= 99%), hole minutes excused as no-trade, and days blocked (adjusted
coverage under 90%), for each kind of evidence:
- baseline: the rule before this change (any calm gap of <= 10 bars is quiet; `quiet_chance=None`);
- partition: the profile of the day itself (its own holes count as empty minutes: the weakest case);
- history: the profile of the 7 previous days as fetched cleanly (the holes are one fetch's fault);
- history (holed): the 7 previous days carry holes too (every fetch lossy);
- reference: a second vendor's hourly volume of the same market (CoinAPI's COINBASE_SPOT bars), with
  the day's own profile; history + reference: both, as the pipeline passes them.
Quiet: the sandbox's THIN-USD (no trades in ~30% of minutes, thin hours near 54%) and BTC-USD (0.5%),
whose absent minutes are all genuine no-trade minutes: the share of them wrongly called missing.
The last line is `BENCH_JSON {...}`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from btc_platform.monitoring.quality import combine_profiles, liquidity_profile, summarize_candles  # noqa: E402
from btc_platform.sandbox.market import GeneratedMarket  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "candles_1m_btcusdt"
MIN = pd.Timedelta("1min")
DAY = pd.Timedelta("1D")
HISTORY_DAYS = 7
MIN_COVERAGE = 0.9
NOW = pd.Timestamp("2030-01-01", tz="UTC")


def real_minutes() -> pd.DataFrame:
    frames = []
    for f in sorted(REAL.glob("BTCUSDT-1m-*.csv.gz")):
        raw = pd.read_csv(f, header=None, usecols=[0, 1, 2, 3, 4, 5])
        frames.append(pd.DataFrame({"ts": pd.to_datetime(raw[0], unit="ms", utc=True),
                                    **{c: raw[i].astype("float64") for i, c in
                                       enumerate(["open", "high", "low", "close", "volume"], 1)}}))
    return pd.concat(frames, ignore_index=True)


def punch(day_df: pd.DataFrame, day: pd.Timestamp, holes: int, rng) -> tuple[pd.DataFrame, list[tuple[int, int]]]:
    """Cut `holes` runs of 1-10 minutes out of a day, one per slot of the day, never touching."""
    slot = 1440 // holes
    lengths = rng.integers(1, 11, holes)
    starts = np.arange(holes) * slot + rng.integers(1, slot - lengths)
    runs = [(int(a), int(a + n)) for a, n in zip(starts, lengths)]
    minute = ((day_df["ts"] - day) // MIN).to_numpy()
    cut = np.zeros(len(day_df), bool)
    for a, b in runs:
        cut |= (minute >= a) & (minute < b)
    return day_df[~cut].reset_index(drop=True), runs


def kinds_by_minute(summary: dict, day: pd.Timestamp) -> np.ndarray:
    out = np.array(["present"] * 1440, dtype=object)
    for g in summary["gaps"]:
        a = int((pd.Timestamp(g["start"]) - day) // MIN)
        out[a:a + g["bars"]] = g["kind"]
    return out


def summarize(df, day, **kw) -> dict:
    return summarize_candles(df, start=day, end=day + DAY, interval=MIN, dataset="bench", partition=str(day.date()),
                             now=NOW, **kw)


def hourly(df: pd.DataFrame) -> pd.DataFrame:
    return df.set_index("ts")["volume"].resample("1h").sum().reset_index()


def evidence(df_day, day, name, history, reference_src) -> dict:
    if name == "baseline":
        return summarize(df_day, day, quiet_chance=None)
    if name == "partition":
        return summarize(df_day, day)
    if name in ("history", "history (holed)"):
        return summarize(df_day, day, profile=history)
    if name == "reference":
        return summarize(df_day, day, reference=hourly(reference_src), reference_interval="1h")
    if name == "history + reference":  # what the pipeline passes when both exist
        return summarize(df_day, day, profile=history, reference=hourly(reference_src), reference_interval="1h")
    raise ValueError(name)


HOLE_CASES = ["baseline", "partition", "history", "history (holed)", "reference", "history + reference"]
QUIET_CASES = ["baseline", "partition", "history", "reference", "history + reference"]


def holes_bench(days: int, holes: int, seed: int) -> dict:
    minutes = real_minutes()
    first = minutes["ts"].min().normalize() + HISTORY_DAYS * DAY
    by_day = {d: g.reset_index(drop=True) for d, g in minutes.groupby(minutes["ts"].dt.normalize())}
    rng = np.random.default_rng(seed)
    punched = {}
    for d in sorted(by_day):
        punched[d] = punch(by_day[d], d, holes, rng)

    def profile(d, holed):
        src = (lambda x: punched[x][0]) if holed else (lambda x: by_day[x])
        return combine_profiles(liquidity_profile(src(d - k * DAY), start=d - k * DAY, end=d - (k - 1) * DAY)
                                for k in range(1, HISTORY_DAYS + 1) if d - k * DAY in by_day)

    stats = {c: {"holes": 0, "missing": 0, "hole_minutes": 0, "excused_minutes": 0, "blocked_days": 0}
             for c in HOLE_CASES}
    for d in [first + i * DAY for i in range(days)]:
        holed_df, runs = punched[d]
        for case in HOLE_CASES:
            hist = profile(d, case == "history (holed)") if case.startswith("history") else None
            s = evidence(holed_df, d, case, hist, by_day[d])
            k = kinds_by_minute(s, d)
            st = stats[case]
            for a, b in runs:
                st["holes"] += 1
                st["missing"] += bool((k[a:b] == "missing").all())
                st["hole_minutes"] += b - a
                st["excused_minutes"] += int((k[a:b] == "no_trade").sum())
            st["blocked_days"] += s["coverage_adjusted"] < MIN_COVERAGE
    for st in stats.values():
        st["share_missing"] = st["missing"] / st["holes"]
    return {"days": days, "holes_per_day": holes, "cases": stats}


def quiet_bench(symbol: str, days: int, start: pd.Timestamp) -> dict:
    market = GeneratedMarket(7)

    def day_df(d):
        return market.minutes(symbol, d, d + DAY)

    stats = {c: {"quiet_minutes": 0, "called_missing": 0, "blocked_days": 0} for c in QUIET_CASES}
    for d in [start + i * DAY for i in range(days)]:
        df = day_df(d)
        hist = combine_profiles(liquidity_profile(day_df(d - k * DAY), start=d - k * DAY, end=d - (k - 1) * DAY)
                                for k in range(1, HISTORY_DAYS + 1))
        for case in QUIET_CASES:
            s = evidence(df, d, case, hist, df)
            k = kinds_by_minute(s, d)
            st = stats[case]
            st["quiet_minutes"] += int((k != "present").sum())
            st["called_missing"] += int((k == "missing").sum())
            st["blocked_days"] += s["coverage_adjusted"] < MIN_COVERAGE
    for st in stats.values():
        st["share_called_missing"] = st["called_missing"] / max(1, st["quiet_minutes"])
    return {"symbol": symbol, "days": days, "cases": stats}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--holes", type=int, default=20, help="holes of 1-10 minutes per day")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--smoke", action="store_true", help="3 days")
    args = ap.parse_args()
    days = 3 if args.smoke else args.days
    if not REAL.exists():
        sys.exit(f"real candles not found at {REAL} (see ../shared/data/README.md)")
    t0 = time.perf_counter()
    holes = holes_bench(days, args.holes, args.seed)
    quiet = [quiet_bench(sym, days, pd.Timestamp("2024-03-01", tz="UTC")) for sym in ("THIN-USD", "BTC-USD")]
    wall = time.perf_counter() - t0

    print(f"Holes in real BTCUSDT minutes: {days} days x {args.holes} holes of 1-10 minutes (seed {args.seed})")
    print(f"{'evidence':<20}{'holes missing':>15}{'hole minutes excused':>22}{'days blocked':>14}")
    for case, st in holes["cases"].items():
        print(f"{case:<20}{st['share_missing']:>14.1%} {st['excused_minutes']:>14} of {st['hole_minutes']:<6}"
              f"{st['blocked_days']:>8} of {days}")
    print("goal: >= 99% of holes missing")
    for q in quiet:
        print(f"\nGenuine no-trade minutes, sandbox {q['symbol']} ({days} days):")
        print(f"{'evidence':<20}{'wrongly missing':>17}{'of quiet minutes':>18}{'days blocked':>14}")
        for case, st in q["cases"].items():
            print(f"{case:<20}{st['share_called_missing']:>16.2%} {st['called_missing']:>7} of {st['quiet_minutes']:<8}"
                  f"{st['blocked_days']:>8} of {days}")
    print(f"\nwall {wall:.1f} s")
    print("BENCH_JSON " + json.dumps({"holes": holes, "quiet": quiet, "wall_s": round(wall, 2)}))


if __name__ == "__main__":
    main()
