"""Walk-forward train/validation/test folds with a purge before each evaluation window and an
embargo after each test window.

Layout of fold k (time runs right; the newest fold comes last):

    [ train ........ ] purge [ validation ] purge [ test ] embargo [ (train if train_on="all") ]

- purge (>= the target horizon): a row may sit before a window only if its label window, from its
  decision time to decision time + purge, ends at or before the window's first bar opens.
- embargo: rows after a test window are trainable only from the test's last label end + embargo,
  so serially correlated features right after the test never train the model.
- train_on="past" (walk-forward, default) trains on rows before the validation window only;
  "all" also trains on rows after the embargo (purged k-fold style).
Test windows are consecutive blocks of distinct timestamps at the end of the table, shared by
all symbols; validation is the block just before each test window's purge.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from btc_platform.datasets.columns import to_utc

SPLIT_NAMES = ("train", "validation", "test")


@dataclass(frozen=True)
class WalkForwardSpec:
    purge: pd.Timedelta
    embargo: pd.Timedelta
    n_folds: int = 1
    validation_fraction: float = 0.15
    test_fraction: float = 0.15
    train_on: str = "past"  # "past" | "all"
    train_window: pd.Timedelta | None = None  # rolling window; None = expanding

    def __post_init__(self):
        if self.n_folds < 1:
            raise ValueError(f"n_folds must be >= 1, got {self.n_folds}")
        if not (0 < self.validation_fraction < 1 and 0 < self.test_fraction < 1):
            raise ValueError("validation_fraction and test_fraction must lie in (0, 1)")
        if self.validation_fraction + self.n_folds * self.test_fraction >= 1:
            raise ValueError(f"validation + {self.n_folds} test windows leave no room for training")
        if pd.Timedelta(self.purge) < pd.Timedelta(0) or pd.Timedelta(self.embargo) < pd.Timedelta(0):
            raise ValueError("purge and embargo must be >= 0")
        if self.train_on not in ("past", "all"):
            raise ValueError(f"train_on must be 'past' or 'all', got {self.train_on!r}")

    def as_json(self) -> dict:
        return {k: (str(v) if isinstance(v, pd.Timedelta) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Fold:
    index: int
    validation_start: pd.Timestamp
    validation_end: pd.Timestamp  # last ts in the window
    test_start: pd.Timestamp
    test_end: pd.Timestamp

    def as_json(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in asdict(self).items()}


def plan_folds(frame: pd.DataFrame, spec: WalkForwardSpec) -> list[Fold]:
    """The folds' validation and test windows over `frame`'s distinct ts (needs ts, decision_at)."""
    stamps = pd.DatetimeIndex(to_utc(frame["ts"]).unique()).sort_values()
    bar = (to_utc(frame["decision_at"]) - to_utc(frame["ts"])).max()
    n = len(stamps)
    test_size, val_size = int(n * spec.test_fraction), int(n * spec.validation_fraction)
    if test_size < 1 or val_size < 1:
        raise ValueError(f"{n} distinct timestamps are too few for the window fractions")
    folds = []
    for k in range(spec.n_folds):
        end = n - (spec.n_folds - 1 - k) * test_size
        test = stamps[end - test_size:end]
        # Validation rows end their label window (decision + purge) before the test opens.
        fits = stamps[stamps + bar + spec.purge <= test[0]]
        if len(fits) < val_size:
            raise ValueError(f"fold {k}: {len(fits)} timestamps before the test window's purge; "
                             f"need {val_size} for validation and more for training")
        validation = fits[-val_size:]
        folds.append(Fold(k, validation[0], validation[-1], test[0], test[-1]))
    return folds


def fold_masks(frame: pd.DataFrame, fold: Fold, spec: WalkForwardSpec) -> dict[str, np.ndarray]:
    """Boolean row masks of train/validation/test for one fold."""
    ts, decided = to_utc(frame["ts"]), to_utc(frame["decision_at"])
    validation = ((ts >= fold.validation_start) & (ts <= fold.validation_end)).to_numpy()
    test = ((ts >= fold.test_start) & (ts <= fold.test_end)).to_numpy()
    before = (decided + spec.purge <= fold.validation_start).to_numpy()
    if spec.train_window is not None:
        before &= (ts >= fold.validation_start - spec.train_window).to_numpy()
    train = before
    if spec.train_on == "all":
        test_label_end = decided[test].max() + spec.purge
        train = before | (ts >= test_label_end + spec.embargo).to_numpy()
    return {"train": train, "validation": validation, "test": test}


def split_fold(frame: pd.DataFrame, fold: Fold, spec: WalkForwardSpec) -> dict[str, pd.DataFrame]:
    masks = fold_masks(frame, fold, spec)
    return {name: frame[masks[name]].reset_index(drop=True) for name in SPLIT_NAMES}


def walk_forward(frame: pd.DataFrame, spec: WalkForwardSpec) -> list[dict[str, pd.DataFrame]]:
    """Every fold's train/validation/test frames, oldest fold first, rows in (ts, symbol) order."""
    frame = frame.sort_values(["ts", "symbol"], kind="mergesort").reset_index(drop=True)
    return [split_fold(frame, fold, spec) for fold in plan_folds(frame, spec)]


def verify_purged(splits: dict[str, pd.DataFrame], purge: pd.Timedelta, embargo: pd.Timedelta) -> dict:
    """Recheck one fold from its rows: no train or validation label window reaches into a later
    evaluation window, and training rows after the test start past its label end + embargo."""
    problems: list[str] = []
    train, validation, test = (splits[s] for s in SPLIT_NAMES)
    for name, part in splits.items():
        if part.empty:
            problems.append(f"{name} is empty")
    if problems:
        return {"passed": False, "problems": problems}
    v0, t0 = to_utc(validation["ts"]).min(), to_utc(test["ts"]).min()
    t_end = to_utc(test["decision_at"]).max() + purge
    train_ts, train_dec = to_utc(train["ts"]), to_utc(train["decision_at"])
    early = train_ts < v0
    if (train_dec[early] + purge > v0).any():
        problems.append("a training label window reaches into validation")
    if (train_dec[early] + purge > t0).any():
        problems.append("a training label window reaches into test")
    if (to_utc(validation["decision_at"]) + purge > t0).any():
        problems.append("a validation label window reaches into test")
    late = train_ts[~early]
    if ((late >= v0) & (late < t_end + embargo)).any():
        problems.append("training rows inside validation/test or their embargo")
    return {"passed": not problems, "problems": problems,
            "train_end_label": (train_dec[early].max() + purge).isoformat() if early.any() else None,
            "validation_start": v0.isoformat(), "test_start": t0.isoformat()}
