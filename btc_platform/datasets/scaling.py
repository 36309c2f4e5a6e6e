"""Feature scalers fitted on the training part only and saved with the dataset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METHODS = ("standard", "robust")


@dataclass(frozen=True)
class Scaler:
    method: str
    feature_names: tuple[str, ...]
    center: np.ndarray
    scale: np.ndarray

    def transform(self, X: np.ndarray, fill_missing: bool = True) -> np.ndarray:
        """Scaled float32 copy; missing values become 0 (the training centre) when fill_missing."""
        if X.shape[-1] != len(self.feature_names):
            raise ValueError(f"X has {X.shape[-1]} features, the scaler {len(self.feature_names)}")
        out = ((X - self.center) / self.scale).astype(np.float32)
        return np.nan_to_num(out, nan=0.0) if fill_missing else out

    def to_json(self) -> dict:
        return {"method": self.method, "feature_names": list(self.feature_names),
                "center": [float(v) for v in self.center], "scale": [float(v) for v in self.scale]}

    @classmethod
    def from_json(cls, data: dict) -> Scaler:
        return cls(data["method"], tuple(data["feature_names"]),
                   np.asarray(data["center"], dtype=np.float64), np.asarray(data["scale"], dtype=np.float64))


def fit_scaler(X_train: np.ndarray, feature_names, method: str = "standard") -> Scaler:
    """Mean/std ("standard") or median/IQR ("robust") per column, ignoring NaN.

    A column without spread (or without values) gets scale 1, so it is only centred.
    """
    if method not in METHODS:
        raise ValueError(f"scaler method must be one of {METHODS}, got {method!r}")
    X = np.asarray(X_train, dtype=np.float64)
    if X.ndim != 2 or len(X) == 0:
        raise ValueError("fit_scaler needs a non-empty 2-D training matrix")
    empty = np.isnan(X).all(axis=0)
    safe = np.where(empty, 0.0, X)  # avoid all-NaN warnings; such columns centre at 0
    if method == "standard":
        center, scale = np.nanmean(safe, axis=0), np.nanstd(safe, axis=0)
    else:
        q1, center, q3 = np.nanpercentile(safe, [25, 50, 75], axis=0)
        scale = q3 - q1
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    return Scaler(method, tuple(feature_names), center, scale)
