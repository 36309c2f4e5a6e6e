"""Technical features on the full bar grid: a missing bar stays a hole, a partial bar's volume is not trusted.

`compute_technical_features` takes its rows as consecutive bars. Bars read from the lake can lack
whole days (a day its quality check blocked, a day never materialized); computed over the days
around such a hole, the first bar after it would get a 25-hour "1-hour" return. Here:

- bars are placed on the grid of every expected bar in [start, end), and each run of consecutive
  present bars is computed on its own, so no window spans a hole: a finite window is NaN until it
  fits after the hole, and the recursions (EMA, RSI, ATR, ADX) start afresh, as at the start of history;
- `lookback_gap` is true where any expected bar of the row's lookback (`lookback_bars`: its longest
  window, or the bars its recursions need to settle) is missing, i.e. the row is not what a
  computation over the full history would give;
- a bar whose minute coverage (`bar_coverage`) is under `min_coverage` gets its VOLUME_COLUMNS null
  and `partial_bar` true: 22 of 60 minutes' volume is not a quiet hour. Later rows' volume windows
  still hold that bar's volume (1 of 20 bars in volume_ratio_20), which is why it is not nulled there.

On complete data with full coverage the values are `compute_technical_features`' (equal to `ta`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from btc_platform.features.resample import MINUTE, _utc, ts_to_ns
from btc_platform.features.technical import VOLUME_COLUMNS, compute_technical_features, lookback_bars, parse_timeframe

MIN_BAR_COVERAGE = 0.9  # share of a bar's minutes below which its volume features are null
FLAG_COLUMNS = ["partial_bar", "lookback_gap"]


def bar_coverage(bars: pd.DataFrame, bar: pd.Timedelta) -> np.ndarray:
    """Each bar's minute coverage: `bar_coverage`, else n_source_bars / minutes in the bar (candles
    written before the column existed); NaN where neither says."""
    cov = pd.Series(np.nan, index=bars.index)
    if "bar_coverage" in bars:
        cov = pd.to_numeric(bars["bar_coverage"], errors="coerce")
    if "n_source_bars" in bars:
        cov = cov.fillna(pd.to_numeric(bars["n_source_bars"], errors="coerce") / (bar.value / MINUTE))
    return cov.to_numpy(dtype=np.float64)


def _grid_positions(bars: pd.DataFrame, step: int, first: int, n: int) -> np.ndarray:
    """Index of each bar on the grid; a bar off the grid, outside it or repeated is refused by name."""
    t = ts_to_ns(bars["ts"])
    pos, off = np.divmod(t - first, step)
    bad = (off != 0) | (pos < 0) | (pos >= n)
    if bad.any():
        raise ValueError(f"bar at {bars['ts'].iloc[int(np.argmax(bad))]} is not on the {pd.Timedelta(step)} "
                         "grid of the requested range")
    repeated = np.flatnonzero(np.diff(pos) == 0)
    if len(repeated):
        raise ValueError(f"bar at {bars['ts'].iloc[int(repeated[0])]} appears more than once")
    return pos


def technical_features_on_grid(
    bars: pd.DataFrame,
    timeframe: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    min_coverage: float | None = MIN_BAR_COVERAGE,
    columns: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Features of one symbol's `bars` (any order) on the grid of `timeframe` bars in [start, end).

    Returns one row per present bar, in time order: `ts, symbol, close`, the columns, `partial_bar`
    and `lookback_gap` (see the module docstring). Bars before `start` count as unknown, not
    missing: pass the start of the product's history, or of the lookback you mean to check.
    `min_coverage=None` trusts every bar's volume.
    """
    tf = parse_timeframe(timeframe)
    cols = None if columns is None else list(columns)
    step = tf.bar.value
    first = -(-_utc(start).value // step) * step
    n = max(0, -(-(_utc(end).value - first) // step))
    bars = bars.sort_values("ts", kind="stable", ignore_index=True)
    pos = _grid_positions(bars, step, first, n)

    # One computation per run of consecutive bars: nothing reads across a hole.
    cuts = [0, *(np.flatnonzero(np.diff(pos) != 1) + 1), len(bars)]
    parts = [compute_technical_features(bars.iloc[a:b], tf, columns=cols) for a, b in zip(cuts[:-1], cuts[1:])]
    out = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)

    partial = np.zeros(len(bars), dtype=bool)
    if min_coverage is not None:
        with np.errstate(invalid="ignore"):
            partial = bar_coverage(bars, tf.bar) < min_coverage
        volume_cols = [c for c in VOLUME_COLUMNS if c in out.columns]
        if partial.any() and volume_cols:
            out.loc[partial, volume_cols] = np.nan
    out["partial_bar"] = partial

    # Missing bars in each row's lookback: running counts over the grid, clipped at its start.
    present = np.zeros(n, dtype=bool)
    present[pos] = True
    missing_before = np.concatenate([[0], np.cumsum(~present)])
    reach = lookback_bars(tf, cols)
    out["lookback_gap"] = missing_before[pos + 1] - missing_before[np.maximum(pos - reach, 0)] > 0
    return out

