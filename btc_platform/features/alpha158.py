"""Candle-shape and rolling features after qlib's Alpha158, normalised by the close (or open).

Formulas (qlib's expressions; d is a window in bars, C/O/H/L/V the bar's close/open/high/low/volume,
Ref(x, d) the value d bars earlier):

    kmid   = (C - O) / O                      klen = (H - L) / O
    kup    = (H - max(O, C)) / O              klow = (min(O, C) - L) / O
    ksft   = (2C - H - L) / O
    roc_d  = Ref(C, d) / C                    ma_d  = Mean(C, d) / C
    std_d  = Std(C, d) / C          (ddof=1)  rsv_d = (C - Min(L, d)) / (Max(H, d) - Min(L, d) + 1e-12)
    corr_d = Corr(C, ln(V + 1), d)            cntp_d = Mean(C > Ref(C, 1), d)
    sump_d = Sum(max(C - Ref(C, 1), 0), d) / (Sum(|C - Ref(C, 1)|, d) + 1e-12)

Two deliberate differences from qlib, both about the first rows and degenerate windows:
- qlib's rolling operators use `min_periods=1` (a 60-bar mean over 3 bars in the warm-up); here every
  window is full, so a value is NaN until d bars (d + 1 for the ones built on C - Ref(C, 1)) exist;
- qlib sets Corr to NaN where either rolling std is within 2e-5 of 0 (an absolute threshold made for
  its price-adjusted stocks); here Corr is NaN where either window is constant (a filled gap, a
  window without volume) and is clipped to [-1, 1] against rounding.
Std and Corr come from `_window.rolling_moments` (block-merged sums of deviations), not from pandas'
running sums: on long price histories those drift by up to ~1e-7 relative (5-bar windows, a year
of minutes), which also made a day computed with a lookback differ from the full history.
"""

from __future__ import annotations

import numpy as np

from collections.abc import Callable, Iterator

from btc_platform.features._window import NAN, rolling_mean, rolling_moments, rolling_sum, shift

WINDOWS: tuple[int, ...] = (5, 10, 20, 30, 60)
KBAR_COLUMNS: list[str] = ["kmid", "klen", "kup", "klow", "ksft"]
ROLLING_KINDS: tuple[str, ...] = ("roc", "ma", "std", "rsv", "corr", "cntp", "sump")
EPS = 1e-12


def rolling_columns(windows: tuple[int, ...] = WINDOWS) -> list[str]:
    return [f"{kind}_{d}" for d in windows for kind in ROLLING_KINDS]


def kbar(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
         wanted: set[str] | None = None):
    """Yield (name, values) for the candle-shape columns, one at a time."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_open = 1.0 / open_
        formulas = {
            "kmid": lambda: close - open_,
            "klen": lambda: high - low,
            "kup": lambda: high - np.maximum(open_, close),
            "klow": lambda: np.minimum(open_, close) - low,
            "ksft": lambda: 2.0 * close - high - low,
        }
        for name, numerator in formulas.items():
            if wanted is None or name in wanted:
                values = numerator()
                values *= inv_open
                yield name, values


def rolling_extremes(high: np.ndarray, low: np.ndarray, windows):
    """Yield (d, Max(H, d), Min(L, d)) for the windows in ascending order; NaN until d rows (or
    while a NaN is inside the window). Exact: each window is the union of two overlapping
    power-of-two spans, and the span tables are built one doubling at a time."""
    spans = {1: (high, low)}
    span = 1
    for d in sorted(set(windows)):
        while span * 2 <= d:
            hi, lo = spans.pop(span) if span > 1 else spans[span]
            spans = {span * 2: (np.maximum(hi, shift(hi, span)), np.minimum(lo, shift(lo, span)))}
            span *= 2
        hi, lo = spans[span]
        if span == d:
            yield d, hi.copy(), lo.copy()
        else:
            yield d, np.maximum(hi, shift(hi, d - span)), np.minimum(lo, shift(lo, d - span))


def window_counts(flags: np.ndarray, windows) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (d, number of 1s among the last d flags) for 0/1 flags (NaN = unknown, e.g. row 0).

    Exact (integer running sums): NaN until d rows exist and where a NaN is inside the window.
    """
    n = len(flags)
    unknown = np.isnan(flags)
    ones = np.cumsum(flags == 1, dtype=np.int64)
    nans = np.cumsum(unknown, dtype=np.int64)
    del unknown
    for d in windows:
        out = np.full(n, NAN)
        if d <= n:
            total = ones[d - 1:].copy()
            total[1:] -= ones[:-d]
            missing = nans[d - 1:].copy()
            missing[1:] -= nans[:-d]
            body = out[d - 1:]
            body[...] = total
            body[missing > 0] = NAN
        yield d, out


def rolling_features(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
                     volume: np.ndarray, windows: tuple[int, ...] = WINDOWS,
                     wanted: set[str] | None = None,
                     close_mean: Callable[[int], np.ndarray] | None = None):
    """Yield (name, values) for the rolling Alpha158 columns, skipping names not in `wanted`.

    `close_mean(d)` may hand over rolling means of the close the caller shares with other features
    (SMA 20). Std and Corr use the accurate block-merged moments of `_window.rolling_moments`.
    """
    def want(name):
        return wanted is None or name in wanted

    close_mean = close_mean or (lambda d: rolling_mean(close, d))
    with np.errstate(invalid="ignore", divide="ignore"):
        inv_close = 1.0 / close
        log_vol = np.log1p(volume) if any(want(f"corr_{d}") for d in windows) else None
    for d in windows:
        if want(f"roc_{d}"):
            yield f"roc_{d}", shift(close, d) * inv_close
        if want(f"ma_{d}"):
            yield f"ma_{d}", close_mean(d) * inv_close
        if want(f"std_{d}") or want(f"corr_{d}"):
            m2, corr = rolling_moments(close, d, log_vol if want(f"corr_{d}") else None)
            if want(f"std_{d}"):
                m2 *= 1.0 / (d - 1)
                yield f"std_{d}", np.sqrt(m2, out=m2) * inv_close
            del m2
            if corr is not None:
                yield f"corr_{d}", corr
            del corr
    rsv_windows = [d for d in windows if want(f"rsv_{d}")]
    for d, hi, lo in rolling_extremes(high, low, rsv_windows):
        hi -= lo
        hi += EPS
        lo -= close
        lo /= hi
        yield f"rsv_{d}", np.negative(lo, out=lo)  # (close - min) / (max - min + eps)
        del hi, lo
    if not any(want(f"{k}_{d}") for k in ("cntp", "sump") for d in windows):
        return
    diff = close - shift(close, 1)
    with np.errstate(invalid="ignore"):
        up = np.where(np.isnan(diff), NAN, (diff > 0).astype(np.float64))
    for d, count in window_counts(up, [d for d in windows if want(f"cntp_{d}")]):
        count /= d
        yield f"cntp_{d}", count
    del up
    gain = np.maximum(diff, 0.0)
    np.abs(diff, out=diff)
    for d in windows:
        if want(f"sump_{d}"):
            yield f"sump_{d}", rolling_sum(gain, d) / (rolling_sum(diff, d) + EPS)
