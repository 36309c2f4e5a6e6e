"""Test figures shared by the trainers: a return forecast against the zero forecast, and a class
forecast against always calling the train split's majority class."""

from __future__ import annotations

import math

import numpy as np


def evaluate(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and directional accuracy of `pred`, beside the same figures for predicting 0."""
    y, pred = np.asarray(y, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    moved = y != 0  # a zero return has no direction to get right
    up_share = float(np.mean(y[moved] > 0)) if moved.any() else math.nan
    rmse_zero = float(np.sqrt(np.mean(y**2)))
    rmse = float(np.sqrt(np.mean((pred - y) ** 2)))
    return {
        "rmse": rmse,
        "mae": float(np.mean(np.abs(pred - y))),
        "directional_accuracy": (
            float(np.mean(np.sign(pred[moved]) == np.sign(y[moved]))) if moved.any() else math.nan
        ),
        "zero_rmse": rmse_zero,
        "zero_mae": float(np.mean(np.abs(y))),
        # Predicting 0 has no sign, so the naive directional baseline is "always up": its
        # accuracy is the share of positive targets. Unlike a 0.5 coin flip it is not fooled
        # by a trending test period, so the model has to beat the drift, not chance.
        "zero_directional_accuracy": up_share,
        "rmse_vs_zero": rmse / rmse_zero if rmse_zero > 0 else math.nan,
    }


def evaluate_labels(labels: np.ndarray, pred: np.ndarray, train_labels: np.ndarray) -> dict[str, float]:
    """Accuracy and macro F1 of predicted class codes where the label is known (code >= 0), and
    the accuracy of always predicting the most common class of `train_labels`."""
    labels, pred, train_labels = (np.asarray(a, dtype=np.int64) for a in (labels, pred, train_labels))
    known = labels >= 0
    labels, pred = labels[known], pred[known]
    train_known = train_labels[train_labels >= 0]
    if not len(labels):
        return {"label_accuracy": math.nan, "label_macro_f1": math.nan, "majority_accuracy": math.nan}
    f1 = []
    for c in np.union1d(labels, pred):  # the classes that occur, as scikit-learn's macro average
        tp = np.sum((pred == c) & (labels == c))
        denom = np.sum(pred == c) + np.sum(labels == c)
        f1.append(2 * tp / denom if denom else 0.0)
    majority = np.bincount(train_known).argmax() if len(train_known) else -1
    return {
        "label_accuracy": float(np.mean(pred == labels)),
        "label_macro_f1": float(np.mean(f1)),
        "majority_accuracy": float(np.mean(labels == majority)) if majority >= 0 else math.nan,
    }
