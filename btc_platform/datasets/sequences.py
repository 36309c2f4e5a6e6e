"""Sliding windows (N, T, F) for sequence models, never across a gap or a symbol boundary."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from btc_platform.datasets.columns import to_utc


def sequence_windows(frame: pd.DataFrame, X: np.ndarray, y: np.ndarray, length: int,
                     bar: pd.Timedelta, extra: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Windows of `length` consecutive bars of one symbol each, labelled by the last bar's target.

    `X` and `y` are row-aligned with `frame` (symbol, ts). A window is kept only when its bars are
    exactly `bar` apart, so a missing hour or a symbol change starts a fresh run.
    Returns X (N, T, F) float32, y (N,), end_ts (N,) int64 ns, symbol (N,), and each `extra` array
    (row-aligned, e.g. the label) taken at the window's last bar.
    """
    if length < 1:
        raise ValueError(f"sequence length must be >= 1, got {length}")
    if len(frame) != len(X) or len(X) != len(y):
        raise ValueError("frame, X and y must have the same rows")
    order = np.lexsort((to_utc(frame["ts"]).to_numpy(), frame["symbol"].to_numpy()))
    ts = pd.DatetimeIndex(to_utc(frame["ts"]).to_numpy()[order]).as_unit("ns").asi8
    symbols = frame["symbol"].astype(str).to_numpy(dtype=str)[order]  # not object: np.load refuses pickles
    X, y = X[order], y[order]
    extra = {k: np.asarray(v)[order] for k, v in (extra or {}).items()}
    step = pd.Timedelta(bar).value
    breaks = np.ones(len(ts), dtype=bool)
    breaks[1:] = (np.diff(ts) != step) | (symbols[1:] != symbols[:-1])
    run_id = np.cumsum(breaks)
    ends = []
    for run in np.unique(run_id):
        idx = np.flatnonzero(run_id == run)
        if len(idx) >= length:
            ends.append(idx[length - 1:])
    ends = np.concatenate(ends) if ends else np.array([], dtype=np.int64)
    n_features = X.shape[1]
    if len(ends) == 0:
        windows = np.zeros((0, length, n_features), dtype=np.float32)
    else:
        # Every window lies inside one run, so index arithmetic end-T+1..end stays in that run.
        all_windows = sliding_window_view(X, length, axis=0)  # (rows-T+1, F, T)
        windows = np.transpose(all_windows[ends - length + 1], (0, 2, 1)).astype(np.float32)
    return {"X": windows, "y": y[ends].astype(np.float32), "end_ts": ts[ends], "symbol": symbols[ends],
            **{k: v[ends] for k, v in extra.items()}}
