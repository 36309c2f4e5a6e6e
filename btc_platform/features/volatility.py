"""Returns, momentum and realized volatility over numpy arrays (no pandas frames, no Dagster).

Definitions (n is a number of bars; `bars_per_year` annualizes):

- log return      r_t = ln(C_t / C_{t-1})
- percent return  (C_t - C_{t-1}) / C_{t-1}             (a fraction: 0.01 is 1 %; `ta`'s DailyReturn / 100)
- momentum n      (C_t - C_{t-n}) / C_{t-n}             (`ta`'s ROCIndicator(window=n) / 100)
- close-to-close  sqrt(bars_per_year) * std(r_{t-n+1..t}, ddof=1)               (n returns, n+1 closes)
- Parkinson       sqrt(bars_per_year * mean(ln(H/L)^2) / (4 ln 2))              (over n bars)
- Garman-Klass    sqrt(bars_per_year * mean(0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2))  (over n bars)

The range estimators are clipped at 0 before the square root (a bar with a close outside its own
high/low range could make the Garman-Klass mean negative).
"""

from __future__ import annotations

import numpy as np

from btc_platform.features._window import rolling_mean, rolling_std, shift

LN2 = np.log(2.0)


def log_return(close: np.ndarray, n: int = 1) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(close / shift(close, n))


def pct_change(close: np.ndarray, n: int = 1) -> np.ndarray:
    prev = shift(close, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (close - prev) / prev


def close_to_close_vol(log_ret: np.ndarray, n: int, bars_per_year: float) -> np.ndarray:
    return rolling_std(log_ret, n, ddof=1) * np.sqrt(bars_per_year)


def parkinson_vol(high: np.ndarray, low: np.ndarray, n: int, bars_per_year: float,
                  hl2: np.ndarray | None = None) -> np.ndarray:
    if hl2 is None:
        hl2 = log_hl_squared(high, low)
    mean = rolling_mean(hl2, n)
    return np.sqrt(np.maximum(mean, 0.0) * (bars_per_year / (4.0 * LN2)))


def garman_klass_vol(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int,
                     bars_per_year: float, gk_term: np.ndarray | None = None) -> np.ndarray:
    if gk_term is None:
        gk_term = garman_klass_term(open_, high, low, close)
    mean = rolling_mean(gk_term, n)
    return np.sqrt(np.maximum(mean, 0.0) * bars_per_year)


def log_hl_squared(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.log(high / low)
    return x * x


def garman_klass_term(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
                      hl2: np.ndarray | None = None) -> np.ndarray:
    if hl2 is None:
        hl2 = log_hl_squared(high, low)
    with np.errstate(divide="ignore", invalid="ignore"):
        co = np.log(close / open_)
    return 0.5 * hl2 - (2.0 * LN2 - 1.0) * (co * co)
