"""The numeric dataset for classic and sequence models: walk-forward folds, each with Parquet per
split, `splits.npz` (raw X/y, feature names, timestamps, symbols), `scaler.json` fitted on its
train part and `sequences.npz` (scaled LSTM windows). The newest fold sits at the top of the
version folder; older folds under `folds/fold=<k>/`."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from btc_platform.datasets import checks
from btc_platform.datasets.build import Build, new_build
from btc_platform.datasets.columns import (QUALITY_COLUMNS, REQUIRED_CORE, bar_length, drop_warmup, feature_columns,
                                           horizon_of, targets_within, to_utc, with_decision_at)
from btc_platform.datasets.manifest import build_version, frame_summary
from btc_platform.datasets.scaling import fit_scaler
from btc_platform.datasets.sequences import sequence_windows
from btc_platform.datasets.walk_forward import SPLIT_NAMES, WalkForwardSpec, verify_purged, walk_forward

ID_COLUMNS = ["symbol", "ts", "decision_at", "asset_symbol", "asset_class"]
# Class codes of the label in sequences.npz (`label_<split>`); -1 where the label is missing.
LABEL_CODES = {"sell": 0, "hold": 1, "buy": 2}


def label_codes(labels: pd.Series) -> np.ndarray:
    return labels.map(LABEL_CODES).fillna(-1).to_numpy(dtype=np.int64)


MIN_ROWS_PER_SPLIT = 24
# Part of the version: files of an older layout (sequences.npz without labels, with pickled symbols)
# are never reused for a new build of the same table.
FILES_FORMAT = 2


@dataclass(frozen=True)
class SplitSpec:
    target: str = "target_return_1h"
    label: str = "target_label_24h"
    purge: str = "24h"
    embargo: str = "24h"
    n_folds: int = 1
    validation_fraction: float = 0.15
    test_fraction: float = 0.15
    train_on: str = "past"
    scaler: str = "standard"
    sequence_length: int = 24
    max_partial_bar_share: float = checks.MAX_PARTIAL_BAR_SHARE

    def walk_forward(self) -> WalkForwardSpec:
        purge = pd.Timedelta(self.purge)
        if purge < horizon_of(self.target):
            raise ValueError(f"purge {self.purge} is shorter than the horizon of {self.target}")
        return WalkForwardSpec(purge=purge, embargo=pd.Timedelta(self.embargo), n_folds=self.n_folds,
                               validation_fraction=self.validation_fraction, test_fraction=self.test_fraction,
                               train_on=self.train_on)


def prepare(table: pd.DataFrame, target: str) -> tuple[pd.DataFrame, dict]:
    """Warm-up rows and rows without the target removed (counted), decision_at ensured."""
    frame, warmup = drop_warmup(with_decision_at(table))
    has_target = frame[target].notna() if target in frame else pd.Series(False, index=frame.index)
    return frame[has_target].reset_index(drop=True), {"warmup_rows": warmup, "rows_without_target": int((~has_target).sum())}


def fold_files(parts: dict[str, pd.DataFrame], features: list[str], spec: SplitSpec, bar: pd.Timedelta,
               keep_targets: list[str]) -> tuple[dict[str, object], dict]:
    """Parquet per split, splits.npz, scaler.json and sequences.npz of one fold."""
    files: dict[str, object] = {}
    quality = [c for c in QUALITY_COLUMNS if c in parts["train"]]  # carried, never features
    columns = [c for c in ID_COLUMNS if c in parts["train"]] + quality + features + keep_targets
    X = {s: parts[s][features].to_numpy(dtype=np.float32) for s in SPLIT_NAMES}
    y = {s: parts[s][spec.target].to_numpy(dtype=np.float32) for s in SPLIT_NAMES}
    scaler = fit_scaler(X["train"], features, spec.scaler)
    arrays = {"feature_names": np.array(features, dtype=str), "target_name": np.array(spec.target)}
    seq = {"feature_names": np.array(features, dtype=str), "length": np.array(spec.sequence_length),
           "target_name": np.array(spec.target), "label_name": np.array(spec.label),
           "label_classes": np.array(list(LABEL_CODES), dtype=str)}
    seq_rows = {}
    for s in SPLIT_NAMES:
        files[f"{s}.parquet"] = parts[s][columns]
        arrays.update({f"X_{s}": X[s], f"y_{s}": y[s], f"symbol_{s}": parts[s]["symbol"].astype(str).to_numpy(dtype=str),
                       f"ts_{s}": pd.DatetimeIndex(to_utc(parts[s]["ts"])).as_unit("ns").asi8})
        if "bar_coverage" in parts[s]:
            arrays[f"bar_coverage_{s}"] = pd.to_numeric(parts[s]["bar_coverage"]).to_numpy(dtype=np.float32)
        labels = label_codes(parts[s][spec.label]) if spec.label in parts[s] else np.full(len(parts[s]), -1)
        windows = sequence_windows(parts[s], scaler.transform(X[s]), y[s], spec.sequence_length, bar,
                                   extra={"label": labels})
        seq.update({f"{k}_{s}": v for k, v in windows.items()})
        seq_rows[s] = int(len(windows["y"]))
    files["splits.npz"], files["sequences.npz"], files["scaler.json"] = arrays, seq, scaler.to_json()
    return files, seq_rows


def build_split_dataset(table: pd.DataFrame, spec: SplitSpec, *, dataset: str, source_name: str,
                        source_hash: str, min_rows_per_split: int = MIN_ROWS_PER_SPLIT) -> Build:
    wf = spec.walk_forward()
    frame, dropped = prepare(table, spec.target)
    folds = walk_forward(frame, wf)
    primary = folds[-1]
    features = feature_columns(primary["train"])
    keep_targets = [c for c in targets_within(frame.columns, wf.purge) if c in frame]
    bar = bar_length(frame)
    config = {**asdict(spec), "features": features, "files_format": FILES_FORMAT}
    build = new_build(dataset, build_version(source_hash, config),
                      f"Walk-forward train/validation/test splits of `{source_name}` for {spec.target}: purge "
                      f"{spec.purge} before each evaluation window, embargo {spec.embargo} after each test window.",
                      config, table, source_name, source_hash)
    for k, parts in enumerate(folds):
        prefix = "" if k == len(folds) - 1 else f"folds/fold={k}/"
        files, seq_rows = fold_files(parts, features, spec, bar, keep_targets)
        build.files.update({prefix + name: content for name, content in files.items()})
        for s in SPLIT_NAMES:
            name = s if not prefix else f"fold{k}_{s}"
            build.splits[name] = {**frame_summary(parts[s], spec.label), "sequences": seq_rows[s]}
    build.extra.update(primary_fold=len(folds) - 1, n_folds=len(folds), target=spec.target, features=features,
                       dropped=dropped, targets_kept=keep_targets, bar=str(bar))
    build.notes.append(f"{dropped['warmup_rows']} warm-up rows (before {', '.join(REQUIRED_CORE)} were all "
                       f"defined) and {dropped['rows_without_target']} rows without {spec.target} left out.")
    build.notes.append("X in splits.npz is unscaled with NaN where a feature is missing (XGBoost handles it); "
                       "sequences.npz is scaled with scaler.json, missing values set to the training mean (0).")
    build.notes.append(f"Targets beyond the purge ({[c for c in frame if c.startswith('target_') and c not in keep_targets]}) "
                       "are left out: they would cross the purge.")
    build.checks = split_checks(frame, folds, spec, wf, min_rows_per_split)
    return build


def split_checks(frame: pd.DataFrame, folds: list[dict[str, pd.DataFrame]], spec: SplitSpec,
                 wf: WalkForwardSpec, min_rows: int = MIN_ROWS_PER_SPLIT) -> dict[str, dict]:
    used = pd.concat([p for parts in folds for p in parts.values()], ignore_index=True)
    purged = [verify_purged(parts, wf.purge, wf.embargo) for parts in folds]
    sizes = {f"fold{k}_{s}": int(len(parts[s])) for k, parts in enumerate(folds) for s in SPLIT_NAMES}
    all_parts = {f"fold{k}_{s}": parts[s] for k, parts in enumerate(folds) for s in SPLIT_NAMES}
    return {
        "required_completeness": checks.completeness(frame, REQUIRED_CORE),
        "targets_present": checks.targets_present(all_parts, spec.target),
        "no_long_gaps": checks.max_gap(frame),
        "splits_purged": {"passed": all(p["passed"] for p in purged), "purge": spec.purge,
                          "embargo": spec.embargo, "folds": purged},
        "splits_large_enough": {"passed": min(sizes.values()) >= min_rows, "rows": sizes, "minimum": min_rows},
        "partial_bars": checks.partial_bars(frame, spec.max_partial_bar_share),
        "label_balance": checks.label_balance(used[spec.label]) if spec.label in used
        else {"passed": False, "shares": {}, "rows": 0, "note": f"{spec.label} not in the table"},
    }
