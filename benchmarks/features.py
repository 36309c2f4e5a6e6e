"""Features benchmark: the technical feature set on seven years of 1-minute bars, against `ta` 0.11.

    .venv/bin/python benchmarks/features.py               # 3,679,200 bars (7 x 365 days), ~3 min
    .venv/bin/python benchmarks/features.py --rows 20000  # a smoke run, seconds

The bars come from the sandbox's `GeneratedMarket(7)` (BTC-USD from 2018-12-01), put on the full
minute grid as the platform's resampler does (a minute without trades repeats the previous close
with volume 0). Each side runs in its own subprocess, so its peak memory (`ru_maxrss`) is its own:

- ta:          every `ta` 0.11 indicator the project shares (RSI, MACD, Bollinger with %B and
               width, SMA, EMA, ATR, ADX with +DI/-DI, MFI, CMF, VWAP, ROC, daily (log) return),
               timed per indicator; "core" is STACK.md's set (RSI, MACD, Bollinger, SMA/EMA, ATR, ADX);
- ours core:   `compute_technical_features(bars, "1m", columns=TA_CORE_COLUMNS)`, the same 14 columns;
- ours ta:     `columns=TA_COLUMNS`, the same columns as the whole ta run (like for like);
- ours full:   all FEATURE_COLUMNS (82: the ta ones, day-based volatility and momentum, range
               volatilities, volume features, Alpha158).

Printed: seconds, peak RSS and speed-up over ta for each, the slowest ta indicators, and the largest
difference between our columns and ta's after the first 300 rows (Bollinger compared at 1e-5, the
rest at 1e-9, as the tests do). Goals: >= 15x faster than ta, peak memory < 4 GB. Timings are
printed, never asserted. The last line is `BENCH_JSON {...}` with every figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable without installing it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from btc_platform.features.technical import (  # noqa: E402
    FEATURE_COLUMNS,
    TA_COLUMNS,
    TA_CORE_COLUMNS,
    compute_technical_features,
    window_bars,
)

SYMBOL = "BTC-USD"
DEFAULT_START = "2018-12-01"
DEFAULT_ROWS = 7 * 365 * 1440  # 3,679,200
TIMEFRAME = "1m"
GOAL_SPEEDUP = 15.0
GOAL_PEAK_GB = 4.0
COMPARE_FROM_ROW = 300
# ta writes 0.0 in these warm-up rows where we write NaN
TA_ZERO_WARMUP = {"atr_14": 13, "adx_14": 27, "di_plus_14": 15, "di_minus_14": 15}
GB = 1024 ** 3


# ------------------------------------------------------------------------------------ data


def make_bars(rows: int, start: str, symbol: str = SYMBOL) -> dict[str, np.ndarray]:
    """`rows` one-minute bars from the generated market on the full minute grid (gaps filled)."""
    from btc_platform.sandbox.market import GeneratedMarket

    t0 = pd.Timestamp(start, tz="UTC")
    days = -(-rows // 1440)
    a = GeneratedMarket(7).arrays(symbol, t0.timestamp(), (t0 + pd.Timedelta(days=days)).timestamp())
    start_s = int(t0.timestamp())
    pos = ((a["t"] - start_s) // 60).astype(np.int64)
    keep = pos < rows
    pos = pos[keep]
    present = np.zeros(rows, dtype=bool)
    present[pos] = True
    # index of the last traded minute at or before each minute (the first traded one before any)
    last = np.maximum.accumulate(np.where(present, np.arange(rows), -1))
    last[last < 0] = pos[0]
    out = {"ts_ns": (start_s + 60 * np.arange(rows, dtype=np.int64)) * 1_000_000_000}
    full = {}
    for col in ("open", "high", "low", "close", "volume"):
        full[col] = np.full(rows, np.nan)
        full[col][pos] = a[col][keep]
    close = full["close"][last]
    for col in ("open", "high", "low"):
        out[col] = np.where(present, full[col], close)
    out["close"] = close
    out["volume"] = np.where(present, full["volume"], 0.0)
    out["filled"] = np.array(int((~present).sum()))
    return out


def load_frame(path: str) -> pd.DataFrame:
    with np.load(path) as z:
        return pd.DataFrame({
            "ts": pd.to_datetime(z["ts_ns"], utc=True),
            "symbol": SYMBOL,
            **{c: z[c] for c in ("open", "high", "low", "close", "volume")},
        })


# ------------------------------------------------------------------------------------ workers


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _cpu() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def ta_indicators(bars: pd.DataFrame):
    """(label, core?, {column: series}) per ta indicator, computed lazily so each can be timed."""
    import ta

    c, h, l, v = bars["close"], bars["high"], bars["low"], bars["volume"]

    def macd():
        m = ta.trend.MACD(c, window_slow=26, window_fast=12, window_sign=9)
        return {"macd": m.macd(), "macd_signal": m.macd_signal(), "macd_histogram": m.macd_diff()}

    def bollinger():
        bb = ta.volatility.BollingerBands(c, window=20, window_dev=2)
        return {"bb_upper": bb.bollinger_hband(), "bb_middle": bb.bollinger_mavg(),
                "bb_lower": bb.bollinger_lband(), "bb_pband": bb.bollinger_pband(),
                "bb_wband": bb.bollinger_wband()}

    state = {}

    def adx():
        state["adx"] = ta.trend.ADXIndicator(h, l, c, window=14)  # its three loops run here
        return {"adx_14": state["adx"].adx()}

    def di():
        return {"di_plus_14": state["adx"].adx_pos(), "di_minus_14": state["adx"].adx_neg()}

    def roc():
        return {name: ta.momentum.ROCIndicator(c, window=window_bars(name, TIMEFRAME)).roc() / 100
                for name in TA_COLUMNS if name.startswith("momentum_")}

    return [
        ("RSI", True, lambda: {"rsi_14": ta.momentum.RSIIndicator(c, window=14).rsi()}),
        ("MACD", True, macd),
        ("Bollinger", True, bollinger),
        ("SMA", True, lambda: {f"sma_{n}": ta.trend.SMAIndicator(c, n).sma_indicator() for n in (20, 50, 200)}),
        ("EMA", True, lambda: {f"ema_{n}": ta.trend.EMAIndicator(c, n).ema_indicator() for n in (12, 26)}),
        ("ATR", True, lambda: {"atr_14": ta.volatility.AverageTrueRange(h, l, c, window=14).average_true_range()}),
        ("ADX", True, adx),
        ("ADX +DI/-DI", False, di),
        ("MFI", False, lambda: {"mfi_14": ta.volume.MFIIndicator(h, l, c, v, window=14).money_flow_index()}),
        ("CMF", False, lambda: {"cmf_20": ta.volume.ChaikinMoneyFlowIndicator(h, l, c, v, window=20)
                                .chaikin_money_flow()}),
        ("VWAP", False, lambda: {"vwap_14": ta.volume.VolumeWeightedAveragePrice(h, l, c, v, window=14)
                                 .volume_weighted_average_price()}),
        ("ROC", False, roc),
        ("returns", False, lambda: {
            "log_return_1": ta.others.DailyLogReturnIndicator(c).daily_log_return() / 100,
            "pct_return_1": ta.others.DailyReturnIndicator(c).daily_return() / 100}),
    ]


def worker(kind: str, data: str, out: str) -> dict:
    bars = load_frame(data)
    baseline = _maxrss_bytes()
    result: dict = {"kind": kind, "rows": len(bars), "baseline_rss_bytes": baseline}
    cpu0 = _cpu()
    if kind == "ta":
        parts, columns = {}, {}
        core_s = 0.0
        t_all = time.perf_counter()
        for label, core, fn in ta_indicators(bars):
            t0 = time.perf_counter()
            columns.update(fn())
            parts[label] = time.perf_counter() - t0
            core_s += parts[label] if core else 0.0
        result.update(seconds=time.perf_counter() - t_all, core_seconds=core_s, parts=parts)
        cpu1 = _cpu()
        peak = _maxrss_bytes()
        assert set(columns) == set(TA_COLUMNS), sorted(set(TA_COLUMNS) ^ set(columns))
        values = np.stack([columns[c].to_numpy(dtype=np.float64) for c in TA_COLUMNS])
    else:
        wanted = {"ours-full": None, "ours-ta": TA_COLUMNS, "ours-core": TA_CORE_COLUMNS}[kind]
        t0 = time.perf_counter()
        frame = compute_technical_features(bars, TIMEFRAME, columns=wanted)
        result["seconds"] = time.perf_counter() - t0
        cpu1 = _cpu()
        peak = _maxrss_bytes()
        result["columns"] = frame.shape[1] - 3
        values = np.stack([frame[c].to_numpy() for c in TA_COLUMNS]) if kind == "ours-ta" else None
    result["peak_rss_bytes"] = peak
    result["user_s"], result["sys_s"] = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
    if values is not None:
        np.save(out, values)
    return result


# ------------------------------------------------------------------------------------ comparison


def compare(ours_path: str, ta_path: str) -> dict[str, float]:
    """Largest |ours - ta| / |ta| per column after COMPARE_FROM_ROW; NaN-pattern mismatches raise."""
    ours, ref = np.load(ours_path, mmap_mode="r"), np.load(ta_path, mmap_mode="r")
    worst = {}
    for i, col in enumerate(TA_COLUMNS):
        a, b = np.asarray(ours[i]), np.asarray(ref[i])
        zeros = TA_ZERO_WARMUP.get(col, 0)
        if not (np.isnan(a[:zeros]).all() and (b[:zeros] == 0).all()):
            raise AssertionError(f"{col}: warm-up rows differ from ta's zeros")
        a, b = a[COMPARE_FROM_ROW:], b[COMPARE_FROM_ROW:]
        if not (np.isnan(a) == np.isnan(b)).all():
            raise AssertionError(f"{col}: NaN rows differ from ta's")
        ok = ~np.isnan(b)
        with np.errstate(divide="ignore", invalid="ignore"):
            # Near-zero values are compared on their column's scale: ta's log return is a difference
            # of two logs (rounding ~1e-16 absolute), and %B is a position between the bands whose
            # tiny values amplify the rounding of the bands themselves.
            floor = {"log_return_1": 1e-4, "bb_pband": 1.0}.get(col, 0.0)
            rel = np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), floor)
        rel = rel[np.isfinite(rel)]
        worst[col] = float(rel.max()) if rel.size else 0.0
    return worst


# ------------------------------------------------------------------------------------ driver


def run_worker(kind: str, data: str, out: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--worker", kind, "--data", data, "--out", out],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(rows: int, start: str, skip_ta: bool = False) -> dict:
    t0 = time.perf_counter()
    arrays = make_bars(rows, start)
    gen_s = time.perf_counter() - t0
    result: dict = {
        "rows": rows, "symbol": SYMBOL, "timeframe": TIMEFRAME, "start": start,
        "end": str(pd.to_datetime(arrays["ts_ns"][-1], utc=True)), "filled_minutes": int(arrays["filled"]),
        "generate_s": round(gen_s, 3), "columns_full": len(FEATURE_COLUMNS), "columns_ta": len(TA_COLUMNS),
        "columns_core": len(TA_CORE_COLUMNS), "goal_speedup": GOAL_SPEEDUP, "goal_peak_gb": GOAL_PEAK_GB,
    }
    with tempfile.TemporaryDirectory(prefix="bench-features-") as tmp:
        data = str(Path(tmp) / "bars.npz")
        np.savez(data, **arrays)
        del arrays
        ours = {k: run_worker(f"ours-{k}", data, str(Path(tmp) / f"ours_{k}.npy")) for k in ("core", "ta", "full")}
        ta_run = None if skip_ta else run_worker("ta", data, str(Path(tmp) / "ta.npy"))
        worst = {} if skip_ta else compare(str(Path(tmp) / "ours_ta.npy"), str(Path(tmp) / "ta.npy"))
    for k, r in ours.items():
        result[f"ours_{k}_s"] = round(r["seconds"], 3)
        result[f"ours_{k}_peak_rss_gb"] = round(r["peak_rss_bytes"] / GB, 3)
        result[f"ours_{k}_baseline_rss_gb"] = round(r["baseline_rss_bytes"] / GB, 3)
        result[f"ours_{k}_user_s"], result[f"ours_{k}_sys_s"] = round(r["user_s"], 3), round(r["sys_s"], 3)
    if ta_run is not None:
        result.update(
            ta_s=round(ta_run["seconds"], 3), ta_core_s=round(ta_run["core_seconds"], 3),
            ta_peak_rss_gb=round(ta_run["peak_rss_bytes"] / GB, 3),
            ta_baseline_rss_gb=round(ta_run["baseline_rss_bytes"] / GB, 3),
            ta_user_s=round(ta_run["user_s"], 3), ta_sys_s=round(ta_run["sys_s"], 3),
            ta_parts_s={k: round(v, 3) for k, v in ta_run["parts"].items()},
            speedup_core=round(ta_run["core_seconds"] / ours["core"]["seconds"], 2),
            speedup_ta_columns=round(ta_run["seconds"] / ours["ta"]["seconds"], 2),
            speedup_full_vs_ta=round(ta_run["seconds"] / ours["full"]["seconds"], 2),
            max_rel_diff={k: float(f"{v:.3g}") for k, v in worst.items()},
        )
        bands = [v for k, v in worst.items() if k.startswith("bb_")]
        rest = [v for k, v in worst.items() if not k.startswith("bb_")]
        result["max_rel_diff_bollinger"] = max(bands)
        result["max_rel_diff_other"] = max(rest)
        result["agrees_with_ta"] = max(bands) <= 1e-5 and max(rest) <= 1e-9
        result["goal_speedup_met"] = result["speedup_ta_columns"] >= GOAL_SPEEDUP
    result["goal_peak_met"] = result["ours_full_peak_rss_gb"] < GOAL_PEAK_GB
    return result


def report(r: dict) -> str:
    lines = [
        f"features benchmark: {r['rows']:,} one-minute bars of {r['symbol']} (generated market, "
        f"{r['start']} .. {r['end'][:16]}, {r['filled_minutes']:,} filled minutes), timeframe {r['timeframe']}",
        f"{'':42s} {'columns':>7s} {'seconds':>8s} {'CPU user':>9s} {'CPU sys':>8s} {'peak RSS':>10s} {'vs ta':>7s}",
    ]

    def row(label, cols, secs, user, sys_, peak, speed=None):
        speed_s = f"{speed:6.1f}x" if speed is not None else ""
        user_s = f"{user:9.2f}" if user is not None else f"{'':9s}"
        sys_s = f"{sys_:8.2f}" if sys_ is not None else f"{'':8s}"
        lines.append(f"{label:42s} {cols:7d} {secs:8.2f} {user_s} {sys_s} {peak:7.2f} GB {speed_s:>7s}")

    has_ta = "ta_s" in r
    if has_ta:
        row("ta 0.11, core (RSI MACD BB SMA EMA ATR ADX)", r["columns_core"], r["ta_core_s"], None, None,
            r["ta_peak_rss_gb"])
    row("ours, the same core columns", r["columns_core"], r["ours_core_s"], r["ours_core_user_s"],
        r["ours_core_sys_s"], r["ours_core_peak_rss_gb"], r.get("speedup_core"))
    if has_ta:
        row("ta 0.11, every indicator we share", r["columns_ta"], r["ta_s"], r["ta_user_s"], r["ta_sys_s"],
            r["ta_peak_rss_gb"])
    row("ours, the same columns", r["columns_ta"], r["ours_ta_s"], r["ours_ta_user_s"], r["ours_ta_sys_s"],
        r["ours_ta_peak_rss_gb"], r.get("speedup_ta_columns"))
    row("ours, full set (vs ta's shared set)", r["columns_full"], r["ours_full_s"], r["ours_full_user_s"],
        r["ours_full_sys_s"], r["ours_full_peak_rss_gb"], r.get("speedup_full_vs_ta"))
    lines.append(f"{'':42s} (peak RSS includes the loaded bars: {r['ours_full_baseline_rss_gb']:.2f} GB before "
                 f"computing; CPU sys is mostly first-touch page faults of new memory)")
    if has_ta:
        parts = sorted(r["ta_parts_s"].items(), key=lambda kv: -kv[1])
        lines.append("ta seconds per indicator: " + ", ".join(f"{k} {v:.2f}" for k, v in parts))
        lines.append(f"agreement with ta after row {COMPARE_FROM_ROW}: max relative difference "
                     f"{r['max_rel_diff_other']:.1e} (Bollinger {r['max_rel_diff_bollinger']:.1e}); "
                     f"warm-up NaN/zero rows as expected -> {'ok' if r['agrees_with_ta'] else 'MISMATCH'}")
        lines.append(f"goal >= {GOAL_SPEEDUP:.0f}x faster than ta (same columns): {r['speedup_ta_columns']:.1f}x "
                     f"-> {'met' if r['goal_speedup_met'] else 'NOT met'}")
    lines.append(f"goal peak memory < {GOAL_PEAK_GB:.0f} GB (full set): {r['ours_full_peak_rss_gb']:.2f} GB "
                 f"-> {'met' if r['goal_peak_met'] else 'NOT met'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="one-minute bars (default: 7 x 365 days)")
    p.add_argument("--start", default=DEFAULT_START)
    p.add_argument("--skip-ta", action="store_true", help="time the project's code only")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.data, args.out)), flush=True)
        return 0
    if args.rows < 1000:
        p.error("--rows must be at least 1000")
    result = run(args.rows, args.start, skip_ta=args.skip_ta)
    print(report(result), flush=True)
    print("BENCH_JSON " + json.dumps(result, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
