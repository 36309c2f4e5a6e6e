"""XGBoost baseline on target_return_1h: `python -m btc_platform.training.xgboost_baseline`.

A runtime trainer (btc_platform.training.runtime): launched by Dagster it speaks Pipes (extras:
dataset_dir, model_dir, optional params), run by hand it takes --dataset-dir/--model-dir. It reads
`splits.npz` of a published dataset version (local or gs://) and writes `model.json`; the runtime adds
`metrics.json` and the model card, publishes the folder and registers it in MLflow.
Uses the native xgboost API: XGBRegressor would need scikit-learn, which is not a dependency.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from pathlib import Path

import numpy as np
import xgboost as xgb

from btc_platform.training import runtime
from btc_platform.training.metrics import evaluate
from btc_platform.training.runtime import TrainRequest, to_pipes_metadata  # noqa: F401 (re-exported)

NAME = "xgboost_baseline_1h"
TARGET = "target_return_1h"
SPLITS = ("train", "validation", "test")
MIN_ROWS = {"train": 50, "validation": 10, "test": 10}
DEFAULT_PARAMS = {
    "n_estimators": 300,
    "early_stopping_rounds": 30,
    "learning_rate": 0.05,
    "max_depth": 6,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "seed": 42,
}
REQUIRED_ARRAYS = [f"{a}_{s}" for s in SPLITS for a in ("X", "y")]


def pick_device() -> str:
    """'cuda' when this xgboost build can train on a visible GPU, else 'cpu'."""
    if not xgb.build_info().get("USE_CUDA"):
        return "cpu"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # xgboost warns, then falls back, when no GPU
            probe = xgb.train(
                {"device": "cuda", "tree_method": "hist", "verbosity": 0},
                xgb.DMatrix(np.array([[0.0], [1.0]]), label=[0.0, 1.0]),
                num_boost_round=1,
            )
        device = json.loads(probe.save_config())["learner"]["generic_param"]["device"]
    except xgb.core.XGBoostError:
        return "cpu"
    return "cuda" if device.startswith("cuda") else "cpu"


def load_splits(dataset_url: str) -> dict[str, np.ndarray]:
    """The arrays of `splits.npz`; TrainerError when it is missing, corrupt or too small."""
    data = runtime.read_npz(dataset_url, "splits.npz", REQUIRED_ARRAYS)
    runtime.require_rows({s: len(data[f"y_{s}"]) for s in SPLITS}, MIN_ROWS,
                         f"{dataset_url.rstrip('/')}/splits.npz")
    return data


def train(request: TrainRequest, manifest: dict, work_dir: Path, log: logging.Logger) -> dict:
    """Fit with early stopping on validation; save the booster trimmed to its best round."""
    data = load_splits(request.dataset_url)
    p = {**DEFAULT_PARAMS, **request.params}
    device = p.pop("device", None) or pick_device()
    rounds, patience = int(p.pop("n_estimators")), int(p.pop("early_stopping_rounds"))
    names = [str(n) for n in data["feature_names"]] if "feature_names" in data else None
    dm = {s: xgb.DMatrix(data[f"X_{s}"], label=data[f"y_{s}"], feature_names=names) for s in SPLITS}
    log.info(f"training on {device}: {dm['train'].num_row()} rows, up to {rounds} rounds")
    booster = xgb.train(
        {"objective": "reg:squarederror", "eval_metric": "rmse", "tree_method": "hist", "device": device, **p},
        dm["train"],
        num_boost_round=rounds,
        evals=[(dm["validation"], "validation")],
        early_stopping_rounds=patience,
        verbose_eval=False,
    )
    best = int(booster.best_iteration)
    booster = booster[: best + 1]  # the saved model is the one early stopping chose
    metrics = evaluate(data["y_test"], booster.predict(dm["test"]))
    metrics.update(
        n_train=dm["train"].num_row(), n_val=dm["validation"].num_row(), n_test=dm["test"].num_row(),
        best_iteration=best, device=device,
        target=str(data["target_name"]) if "target_name" in data else TARGET,
    )
    booster.save_model((work_dir / "model.json").as_posix())
    log.info(f"test rmse {metrics['rmse']:.6g} vs zero {metrics['zero_rmse']:.6g}")
    return metrics


def main(argv: list[str] | None = None) -> int:
    return runtime.main(NAME, train, DEFAULT_PARAMS, argv, walk_forward=True)


if __name__ == "__main__":
    sys.exit(main())
