"""XGBoost baseline on target_return_1h: `python -m btc_platform.training.xgboost_baseline`.

Launched by Dagster it speaks Pipes (extras: dataset_dir, model_dir, optional params); run by
hand it takes --dataset-dir/--model-dir. The dataset folder may be a local path or a storage URL
(gs://...): `splits.npz` is read through btc_platform.storage.open_url, like every dataset file.
Only `dagster_pipes` is imported, never `dagster`.
Uses the native xgboost API: XGBRegressor would need scikit-learn, which is not a dependency.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xgboost as xgb
from dagster_pipes import PipesEnvVarParamsLoader, open_dagster_pipes

from btc_platform.storage import open_url

TARGET = "target_return_1h"
MIN_TRAIN_ROWS = 50
MIN_EVAL_ROWS = 10
DEFAULT_PARAMS = {
    "n_estimators": 300,
    "early_stopping_rounds": 30,
    "learning_rate": 0.05,
    "max_depth": 6,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "seed": 42,
}
REQUIRED_ARRAYS = [f"{a}_{s}" for s in ("train", "validation", "test") for a in ("X", "y")]


class DatasetError(Exception):
    """The dataset is missing or unusable; the process exits non-zero with this message."""


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


def load_splits(dataset_dir: str | Path) -> dict[str, np.ndarray]:
    fs, root = open_url(str(dataset_dir))
    path = f"{root.rstrip('/')}/splits.npz"
    if not fs.isfile(path):
        raise DatasetError(f"dataset file not found: {path}")
    with np.load(io.BytesIO(fs.cat_file(path))) as npz:
        missing = [k for k in REQUIRED_ARRAYS if k not in npz.files]
        if missing:
            raise DatasetError(f"{path} lacks arrays {missing}")
        data = {k: npz[k] for k in npz.files}
    sizes = {s: len(data[f"y_{s}"]) for s in ("train", "validation", "test")}
    need = {"train": MIN_TRAIN_ROWS, "validation": MIN_EVAL_ROWS, "test": MIN_EVAL_ROWS}
    short = {s: n for s, n in sizes.items() if n < need[s]}
    if short:
        raise DatasetError(f"too few rows in {path}: {short}; need at least {need}")
    return data


def evaluate(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    y, pred = y.astype(np.float64), pred.astype(np.float64)
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


def train(data: dict[str, np.ndarray], params: dict, log: logging.Logger) -> dict:
    """Fit with early stopping on validation; return booster (trimmed to best) and metrics."""
    p = {**DEFAULT_PARAMS, **params}
    device = p.pop("device", None) or pick_device()
    rounds, patience = int(p.pop("n_estimators")), int(p.pop("early_stopping_rounds"))
    names = [str(n) for n in data["feature_names"]] if "feature_names" in data else None
    dm = {
        s: xgb.DMatrix(data[f"X_{s}"], label=data[f"y_{s}"], feature_names=names)
        for s in ("train", "validation", "test")
    }
    log.info(f"training on {device}: {dm['train'].num_row()} rows, up to {rounds} rounds")
    booster = xgb.train(
        {"objective": "reg:squarederror", "eval_metric": "rmse", "tree_method": "hist",
         "device": device, **p},
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
        n_train=dm["train"].num_row(), n_val=dm["validation"].num_row(),
        n_test=dm["test"].num_row(), best_iteration=best, device=device,
        target=str(data["target_name"]) if "target_name" in data else TARGET,
    )
    return {"booster": booster, "metrics": metrics}


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    # Keep the suffix: xgboost picks JSON or UBJSON from the file extension.
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    write(tmp)
    os.replace(tmp, path)


def run(dataset_dir: str | Path, model_dir: Path, params: dict, log: logging.Logger) -> dict:
    data = load_splits(dataset_dir)
    log.info(f"loaded {dataset_dir}/splits.npz")
    result = train(data, params, log)
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    metrics = {**result["metrics"], "model_path": str(model_dir / "model.json")}
    _write_atomic(model_dir / "model.json", lambda p: result["booster"].save_model(p.as_posix()))
    _write_atomic(
        model_dir / "metrics.json",
        lambda p: p.write_text(json.dumps(metrics, indent=2, sort_keys=True)),
    )
    log.info(
        f"test rmse {metrics['rmse']:.6g} vs zero {metrics['zero_rmse']:.6g}; saved {model_dir}"
    )
    return metrics


def to_pipes_metadata(metrics: dict) -> dict:
    md: dict = {}
    for key, value in metrics.items():
        if key == "model_path":
            md[key] = {"raw_value": value, "type": "path"}
        elif isinstance(value, str):
            md[key] = {"raw_value": value, "type": "text"}
        elif key.startswith("n_") or key == "best_iteration":
            md[key] = {"raw_value": int(value), "type": "int"}
        else:
            md[key] = {"raw_value": float(value), "type": "float"}
    return md


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset-dir", help="folder or storage URL holding splits.npz")
    parser.add_argument("--model-dir", type=Path, help="where model.json and metrics.json go")
    parser.add_argument("--params", type=json.loads, default={}, help="JSON dict of overrides")
    args, _ = parser.parse_known_args(argv)  # Pipes may add its own CLI args
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        if PipesEnvVarParamsLoader().is_dagster_pipes_process():
            with open_dagster_pipes() as pipes:
                extras = pipes.extras
                dataset_dir = extras.get("dataset_dir") or args.dataset_dir
                model_dir = extras.get("model_dir") or args.model_dir
                if not dataset_dir or not model_dir:
                    raise DatasetError("extras must name dataset_dir and model_dir")
                params = {**args.params, **(extras.get("params") or {})}
                metrics = run(str(dataset_dir), Path(model_dir), params, pipes.log)
                pipes.report_asset_materialization(metadata=to_pipes_metadata(metrics))
        else:
            if not args.dataset_dir or not args.model_dir:
                raise DatasetError("outside Dagster, pass --dataset-dir and --model-dir")
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
            run(args.dataset_dir, args.model_dir, args.params, logging.getLogger(__name__))
    except DatasetError as exc:
        print(f"xgboost_baseline: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
