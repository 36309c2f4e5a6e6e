"""Forecast quality out of sample (error, direction, information coefficient, labels) and a guard
that predictions use only data available at decision time."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats

from btc_platform.training.metrics import evaluate, evaluate_labels


def _finite_pairs(y, pred) -> tuple[np.ndarray, np.ndarray]:
    y, pred = np.asarray(y, dtype=np.float64).ravel(), np.asarray(pred, dtype=np.float64).ravel()
    if y.shape != pred.shape:
        raise ValueError(f"y has {len(y)} values, pred {len(pred)}")
    ok = np.isfinite(y) & np.isfinite(pred)
    return y[ok], pred[ok]


def information_coefficient(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Pearson and Spearman (rank) correlation of predictions with outcomes over finite pairs;
    NaN when fewer than 3 pairs or either side is constant."""
    y, pred = _finite_pairs(y, pred)
    if len(y) < 3 or np.ptp(y) == 0 or np.ptp(pred) == 0:
        return {"ic_pearson": math.nan, "ic_rank": math.nan}
    return {"ic_pearson": float(stats.pearsonr(pred, y)[0]), "ic_rank": float(stats.spearmanr(pred, y)[0])}


def numeric_report(y: np.ndarray, pred: np.ndarray, labels: np.ndarray | None = None,
                   label_pred: np.ndarray | None = None, train_labels: np.ndarray | None = None
                   ) -> dict[str, float]:
    """One flat dict of floats: `training.metrics.evaluate` (RMSE/MAE against the zero forecast,
    directional accuracy against always-up) over the finite (y, pred) pairs, their count `n`, the
    IC, and - when `labels` and `label_pred` are given - `evaluate_labels` (accuracy, macro F1 and
    the accuracy of the train split's majority class; NaN majority without `train_labels`)."""
    yf, pf = _finite_pairs(y, pred)
    out: dict[str, float] = {"n": float(len(yf))}
    if len(yf):
        out.update(evaluate(yf, pf))
    out.update(information_coefficient(yf, pf))
    if labels is not None and label_pred is not None:
        train = np.asarray(train_labels if train_labels is not None else [], dtype=np.int64)
        out.update(evaluate_labels(labels, label_pred, train))
    return {k: float(v) for k, v in out.items()}


def leakage_guard(predict: Callable[[pd.DataFrame], np.ndarray], frame: pd.DataFrame, n: int = 20,
                  seed: int = 0, time_col: str = "ts", symbol_col: str = "symbol") -> dict:
    """Check that `predict` only uses data at or before each row's decision time.

    `frame` is sorted by (symbol, time) and its `target_*` columns are dropped before `predict`
    sees it. The full predictions are computed once; then, for `n` rows sampled deterministically
    (`seed`), the prediction is rebuilt from the rows at or before that row's time (all symbols,
    the future cut off) and compared (rtol 1e-6, NaN equals NaN). An exception raised by
    `predict` (e.g. a KeyError for a dropped target column) or a prediction of the wrong length
    is reported as a failure with an `error` entry rather than raised.

    Returns {"passed", "checked", "mismatches": up to 5 of {symbol, ts, full, cut},
    "mismatch_count"}, plus "error" when `predict` raised."""
    keep = [c for c in frame.columns if not str(c).startswith("target_")]
    df = frame[keep].sort_values([symbol_col, time_col], kind="mergesort").reset_index(drop=True)
    rows = np.sort(np.random.default_rng(seed).choice(len(df), size=min(n, len(df)), replace=False))
    mismatches: list[dict] = []
    checked = bad = 0

    def run(part: pd.DataFrame) -> np.ndarray:
        out = np.asarray(predict(part.copy()), dtype=np.float64).ravel()
        if len(out) != len(part):
            raise ValueError(f"predict returned {len(out)} values for {len(part)} rows")
        return out

    error = None
    try:
        full = run(df)
        for i in rows:
            t = df.at[i, time_col]
            cut = df[df[time_col] <= t]
            got = run(cut)[cut.index.get_loc(i)]
            checked += 1
            if not np.allclose(full[i], got, rtol=1e-6, atol=1e-12, equal_nan=True):
                bad += 1
                if len(mismatches) < 5:
                    mismatches.append({"symbol": str(df.at[i, symbol_col]), "ts": str(t),
                                       "full": float(full[i]), "cut": float(got)})
    except Exception as exc:  # noqa: BLE001 - reported as a failed check, not swallowed silently
        error = f"{type(exc).__name__}: {exc}"
    out = {"passed": error is None and bad == 0, "checked": checked, "mismatches": mismatches,
           "mismatch_count": bad}
    if error is not None:
        out["error"] = error
    return out
