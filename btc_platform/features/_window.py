"""Vectorized window kernels over float64 numpy arrays (pandas' Cython rolling/ewm underneath).

Every kernel is causal: the value at row t is a function of rows <= t only, and it is computed the
same way whatever follows row t, so a prefix of the input gives a prefix of the output bit for bit.
Windows are full: a rolling statistic over w rows is NaN until w rows are available.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NAN = np.nan


def as_float(values) -> np.ndarray:
    """A float64 numpy view (or copy, when the dtype differs) of a column."""
    return np.asarray(values, dtype=np.float64)


def _series(x: np.ndarray) -> pd.Series:
    return pd.Series(x, copy=False)


def shift(x: np.ndarray, k: int) -> np.ndarray:
    """x moved k rows later (row t holds x[t-k]); the first k rows are NaN."""
    out = np.empty_like(x)
    k = min(k, len(x))
    out[:k] = NAN
    out[k:] = x[: len(x) - k]
    return out


def rolling_mean(x: np.ndarray, w: int) -> np.ndarray:
    return _series(x).rolling(w, min_periods=w).mean().to_numpy()


def rolling_sum(x: np.ndarray, w: int) -> np.ndarray:
    return _series(x).rolling(w, min_periods=w).sum().to_numpy()


def rolling_var(x: np.ndarray, w: int, ddof: int = 1) -> np.ndarray:
    # pandas returns exactly 0.0 for a window of identical values (a filled gap).
    return _series(x).rolling(w, min_periods=w).var(ddof=ddof).to_numpy()


def rolling_std(x: np.ndarray, w: int, ddof: int = 1) -> np.ndarray:
    # pandas' std is the square root of this same variance (negatives clipped); its own sqrt step
    # is several times slower than numpy's.
    var = rolling_var(x, w, ddof)
    return np.sqrt(np.maximum(var, 0.0, out=var), out=var)


def rolling_max(x: np.ndarray, w: int) -> np.ndarray:
    return _series(x).rolling(w, min_periods=w).max().to_numpy()


def rolling_min(x: np.ndarray, w: int) -> np.ndarray:
    return _series(x).rolling(w, min_periods=w).min().to_numpy()


def ema_span(x: np.ndarray, n: int) -> np.ndarray:
    """`ta`'s EMA: ewm(span=n, adjust=False) started at the first non-NaN value, NaN until n seen."""
    return _series(x).ewm(span=n, min_periods=n, adjust=False).mean().to_numpy()


def wilder(x: np.ndarray, n: int, min_periods: int = 0) -> np.ndarray:
    """Wilder smoothing y = y_prev * (n-1)/n + x / n, started at the first non-NaN value of x."""
    return _series(x).ewm(alpha=1.0 / n, min_periods=min_periods, adjust=False).mean().to_numpy()


def seeded_wilder(x: np.ndarray, n: int, seed_row: int, seed: float) -> np.ndarray:
    """Wilder smoothing that holds `seed` at seed_row and smooths x from seed_row + 1 on.

    Rows before seed_row are NaN. This is how `ta` runs ATR and ADX (a seed mean, then the
    recursion), here as one pandas ewm instead of a Python loop.
    """
    m = len(x)
    if seed_row >= m:
        return np.full(m, NAN)
    seeded = np.empty(m)
    seeded[:seed_row] = NAN
    seeded[seed_row] = seed
    seeded[seed_row + 1:] = x[seed_row + 1:]
    return wilder(seeded, n)


def safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with NaN (not inf) where den is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / den, NAN)


# ------------------------------------------------------------------ accurate rolling moments
#
# pandas' rolling var/cov update running sums row by row; on prices (a large mean, a small spread)
# the rounding of those updates piles up over the history: on a year of 1-minute BTC bars a 5-bar
# std drifts by ~1e-7 relative, and a day computed with a lookback differs from the full history by
# as much. Here every window is the union of the tail of one block of d rows and the head of the
# next, each summarized by sums of deviations from a value inside that part (small numbers, little
# cancellation) and merged with Chan's parallel-variance formula: errors stay ~1e-14 relative,
# whatever the history before the window.


CHUNK_ROWS = 1 << 16  # windows per chunk: temporaries stay small (a few MB) and in cache


def _parts(v: np.ndarray, d: int, geo: dict) -> dict[str, np.ndarray]:
    """One series (a chunk starting on a block boundary) summarized for its m windows of d rows.

    A window starting at row s is the tail of s's block (rows s..block end) plus the head of the
    next block (block start..t); the tail always holds its block's last row and the head its
    block's first row, so deviations are taken from those (small numbers, little cancellation).
    """
    m = geo["m"]
    nb = -(-len(v) // d)
    blocks = np.full(nb * d, NAN)
    blocks[: len(v)] = v
    blocks = blocks.reshape(nb, d)
    last, first = blocks[:, -1].copy(), blocks[:, 0].copy()
    last[~np.isfinite(last)] = 0.0  # a NaN there is in every window part using it anyway
    first[~np.isfinite(first)] = 0.0
    dev_tail = blocks - last[:, None]
    blocks -= first[:, None]
    dev_head = blocks
    s_tail, s_head = _tail_head(dev_tail, dev_head, d, m)
    with np.errstate(invalid="ignore", over="ignore"):
        q_tail, q_head = _tail_head(np.square(dev_tail), np.square(dev_head), d, m)
        mean_tail, mean_head = s_tail * geo["inv_n_tail"], s_head * geo["inv_n_head"]
        # the tail's mean minus the head's: their references differ by first(next) - last(this)
        delta = mean_tail - mean_head
        delta -= np.repeat(first, d)[d - 1: d - 1 + m] - np.repeat(last, d)[:m]
        m2 = q_tail - s_tail * mean_tail
        m2 += q_head - s_head * mean_head
        m2 += delta * delta * geo["weight"]
    np.maximum(m2, 0.0, out=m2)  # NaN stays NaN
    changes = change_counts(v)
    m2[(changes[d - 1: d - 1 + m] == changes[:m]) & ~np.isnan(m2)] = 0.0  # a constant window: exactly 0
    return {"dev_tail": dev_tail, "dev_head": dev_head, "s_tail": s_tail, "s_head": s_head,
            "mean_tail": mean_tail, "mean_head": mean_head, "delta": delta, "m2": m2}


def _tail_head(dev_tail: np.ndarray, dev_head: np.ndarray, d: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Per window: the sum over its tail rows and over its head rows (0 for a one-block window)."""
    tail = np.empty_like(dev_tail)
    np.cumsum(dev_tail[:, ::-1], axis=1, out=tail[:, ::-1])
    head = np.cumsum(dev_head, axis=1).ravel()[d - 1: d - 1 + m]
    head[::d] = 0.0  # a window starting a block has no head
    return tail.ravel()[:m], head


def change_counts(x: np.ndarray) -> np.ndarray:
    """Running count of rows that differ from the row before (NaN counts as a change)."""
    out = np.empty(len(x), dtype=np.int64)
    if len(x):
        out[0] = 0
        np.cumsum(x[1:] != x[:-1], out=out[1:])
    return out


def rolling_moments(x: np.ndarray, d: int, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """(M2, corr): M2 = sum((x - mean)^2) over each window of d rows, and with y the Pearson
    correlation of x and y over the same windows (NaN where either is constant in the window).

    Accurate to ~1e-14 relative whatever the history before the window (see above); NaN until d
    rows exist and where a window holds a NaN; M2 is exactly 0 on a window of equal values.
    Computed in chunks of whole blocks, so memory beyond the outputs stays a few MB.
    """
    n = len(x)
    m2_out = np.full(n, NAN)
    corr_out = None if y is None else np.full(n, NAN)
    m_total = max(n - d + 1, 0)
    step = d * max(1, CHUNK_ROWS // d)
    geo = None
    for c0 in range(0, m_total, step):
        m = min(step, m_total - c0)
        if geo is None or geo["m"] != m:
            k = np.tile(np.arange(d, dtype=np.float64), -(-m // d))[:m]  # rows taken from the next block
            geo = {"m": m, "inv_n_tail": 1.0 / (d - k), "inv_n_head": 1.0 / np.maximum(k, 1.0),
                   "weight": (d - k) * k * (1.0 / d)}  # Chan's n_a * n_b / n (0 for a one-block window)
        rows = slice(c0, c0 + m + d - 1)
        px = _parts(x[rows], d, geo)
        out = slice(c0 + d - 1, c0 + d - 1 + m)
        m2_out[out] = px["m2"]
        if y is None:
            continue
        py = _parts(y[rows], d, geo)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            q_tail, q_head = _tail_head(px["dev_tail"] * py["dev_tail"], px["dev_head"] * py["dev_head"], d, m)
            co = (q_tail - px["s_tail"] * py["mean_tail"]) + (q_head - px["s_head"] * py["mean_head"])
            co += px["delta"] * py["delta"] * geo["weight"]
            corr = np.clip(co / np.sqrt(px["m2"] * py["m2"]), -1.0, 1.0)
        corr[(px["m2"] == 0) | (py["m2"] == 0)] = NAN
        corr_out[out] = corr
    return m2_out, corr_out
