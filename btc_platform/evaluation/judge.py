"""Judge a numeric model version (XGBoost, LSTM) out of sample, and pick the champion on validation.

The model is scored on the validation and test parts of the newest walk-forward fold, which it was
trained on, and on the test window of every older fold by the model the trainer fitted on that fold alone
(`folds/fold=<k>/` in the version: the newest fold's model trained on the older test windows). The
test windows are then pooled into one out-of-sample backtest. Per split: forecast metrics (RMSE against the zero forecast, direction, information
coefficient, label accuracy and macro-F1 against the majority class) and a backtest of
long/flat/short positions from the predictions, with the threshold chosen on validation only, against
buy-and-hold and flat. The leakage guard rebuilds 20 test predictions with the future cut off.
"""

from __future__ import annotations

import io
import math
import posixpath

import numpy as np
import pandas as pd

from btc_platform.evaluation.backtest import Costs, backtest, buy_and_hold, choose_threshold, flat, positions_from_predictions
from btc_platform.evaluation.forecasts import leakage_guard, numeric_report
from btc_platform.storage import open_url
from btc_platform.datasets.split_dataset import LABEL_CODES, label_codes
from btc_platform.training.predictors import load_predictor, older_fold_models

SPLITS = ("validation", "test")
RETURN = "target_return_1h"  # log return from the decision bar's close to the next bar's close
LABEL = "target_label_24h"
BASELINES = ("buy_and_hold", "flat")


def read_split(dataset_url: str, split: str) -> pd.DataFrame:
    fs, root = open_url(dataset_url)
    path = posixpath.join(root, f"{split}.parquet")
    if not fs.isfile(path):
        raise FileNotFoundError(f"{dataset_url.rstrip('/')}/{split}.parquet not found")
    frame = pd.read_parquet(io.BytesIO(fs.cat_file(path)))
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame.sort_values(["symbol", "ts"]).reset_index(drop=True)


def _trades(frame: pd.DataFrame, position: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"symbol": frame["symbol"].to_numpy(), "ts": frame["ts"].to_numpy(),
                         "realized_return": frame[RETURN].to_numpy(dtype=float), "position": position})


def _label_codes(frame: pd.DataFrame) -> np.ndarray | None:
    return label_codes(frame[LABEL]) if LABEL in frame else None


def split_report(out: pd.DataFrame, frame: pd.DataFrame, threshold: float, costs: Costs,
                 train_labels: np.ndarray | None) -> tuple[dict, dict]:
    """(figures, equity curves) of one split from the model's predictions `out` (row-aligned with
    `frame`): forecasts, the model's backtest and the baselines'."""
    pred = out["pred_return"].to_numpy(dtype=float)
    known = np.isfinite(pred) & np.isfinite(frame[RETURN].to_numpy(dtype=float))
    y = frame[RETURN].to_numpy(dtype=float)
    labels, label_pred = _label_codes(frame), None
    prob_cols = [f"prob_{c}" for c in LABEL_CODES]
    if labels is not None and all(c in out for c in prob_cols):
        label_pred = out[prob_cols].to_numpy().argmax(axis=1)
    figures = numeric_report(y[known], pred[known],
                             labels[known] if label_pred is not None else None,
                             label_pred[known] if label_pred is not None else None, train_labels)
    figures["rows"], figures["rows_predicted"] = int(len(frame)), int(known.sum())
    figures["bars"] = int(frame["ts"].nunique())
    trades = _trades(frame, positions_from_predictions(np.where(known, pred, np.nan), threshold))
    results = {"model": backtest(trades, costs=costs), "buy_and_hold": buy_and_hold(trades, costs),
               "flat": flat(trades, costs)}
    for name, result in results.items():
        stats = {k: v for k, v in result.to_dict().items() if not isinstance(v, (list, dict))}
        prefix = "" if name == "model" else f"{name}_"
        figures |= {f"{prefix}bt_{k}": v for k, v in stats.items()}
    curves = {name: r.equity for name, r in results.items()}
    return figures, curves


def judge_fold(predictor, dataset_url: str, costs: Costs) -> dict:
    """One fold: predictions on its validation and test parts, the threshold chosen on validation,
    the figures and equity curves per split, and the test trades (for the pooled walk-forward backtest)."""
    frames = {s: read_split(dataset_url, s) for s in ("train", *SPLITS)}
    train_labels = _label_codes(frames["train"])
    outs = {s: predictor.predict(frames[s]) for s in SPLITS}
    val_pred = outs["validation"]["pred_return"].to_numpy(dtype=float)
    val_known = np.isfinite(val_pred)
    threshold = choose_threshold(val_pred[val_known], _trades(frames["validation"][val_known], val_pred[val_known]), costs)
    report, curves = {}, {}
    for s in SPLITS:
        report[s], curves[s] = split_report(outs[s], frames[s], threshold, costs, train_labels)
    test_pred = outs["test"]["pred_return"].to_numpy(dtype=float)
    trades = _trades(frames["test"], positions_from_predictions(test_pred, threshold))
    trades["pred_return"] = test_pred
    return {"threshold": float(threshold), "report": report, "curves": curves, "frames": frames, "test_trades": trades}


def walk_forward_report(folds: dict[int, dict], costs: Costs) -> dict:
    """Every fold's test window judged by the model that fold trained (none of them saw its window),
    then the test windows pooled into one out-of-sample backtest against buy-and-hold and flat."""
    per_fold = {}
    for k, fold in sorted(folds.items()):
        t = fold["report"]["test"]
        per_fold[str(k)] = {key: t.get(key) for key in ("rows", "rmse", "zero_rmse", "directional_accuracy", "ic_rank",
                                                       "bt_sharpe", "buy_and_hold_bt_sharpe", "bt_total_return")}
        per_fold[str(k)] |= {"threshold": fold["threshold"], "test_start": str(fold["frames"]["test"]["ts"].min()),
                             "test_end": str(fold["frames"]["test"]["ts"].max())}
    trades = pd.concat([f["test_trades"] for _, f in sorted(folds.items())], ignore_index=True)
    y, pred = trades["realized_return"].to_numpy(dtype=float), trades["pred_return"].to_numpy(dtype=float)
    known = np.isfinite(y) & np.isfinite(pred)
    pooled = {"model": backtest(trades, costs=costs), "buy_and_hold": buy_and_hold(trades, costs),
              "flat": flat(trades, costs)}
    figures = {"folds": len(folds), "rows": int(len(trades)),
               "rmse": float(np.sqrt(np.mean((y[known] - pred[known]) ** 2))) if known.any() else math.nan,
               "zero_rmse": float(np.sqrt(np.mean(y[known] ** 2))) if known.any() else math.nan,
               "folds_beating_buy_and_hold": sum(f["bt_sharpe"] > f["buy_and_hold_bt_sharpe"] for f in per_fold.values())}
    for name, result in pooled.items():
        prefix = "" if name == "model" else f"{name}_"
        figures |= {f"{prefix}bt_{k}": v for k, v in result.to_dict().items() if not isinstance(v, (list, dict))}
    return {"per_fold": per_fold, **figures,
            "curves": {name: [[t.isoformat(), float(v)] for t, v in r.equity.items()] for name, r in pooled.items()}}


def evaluate_numeric(model_url: str, costs: Costs = Costs(), guard_rows: int = 20) -> dict:
    """Everything the leaderboard and the promotion need about one model version: the newest fold's
    validation (for promotion) and test, every walk-forward fold's test, and the leakage guard."""
    predictor = load_predictor(model_url)
    dataset_url = predictor.card["dataset_url"]
    newest = judge_fold(predictor, dataset_url, costs)
    folds = {k: judge_fold(load_predictor(model_url, fold=k), f"{dataset_url.rstrip('/')}/folds/fold={k}", costs)
             for k in older_fold_models(model_url)}
    folds[len(folds)] = newest
    report, curves = newest["report"], newest["curves"]
    guard = leakage_guard(lambda f: predictor.predict(f)["pred_return"].to_numpy(dtype=float),
                          newest["frames"]["test"], n=guard_rows)
    return {
        "model": predictor.model, "model_url": model_url, "kind": predictor.kind,
        "dataset_version": predictor.card.get("dataset_version"), "dataset_url": dataset_url,
        "config_hash": predictor.card.get("config_hash"), "target": RETURN,
        "registered_version": predictor.card.get("registered_version"),
        "threshold": newest["threshold"], "costs": {"fee_bps": costs.fee_bps, "slippage_bps": costs.slippage_bps},
        "validation": report["validation"], "test": report["test"], "leakage_guard": guard,
        "walk_forward": walk_forward_report(folds, costs),
        "curves": {s: {k: [[t.isoformat(), float(v)] for t, v in c.items()] for k, c in curves[s].items()}
                   for s in SPLITS},
    }


# A Sharpe over a few days of bars is noise (the sandbox demo once "won" with 27.5 on 90 bars and lost
# on test): below two weeks of hourly bars on validation nothing is promoted.
MIN_VALIDATION_BARS = 14 * 24


def beats_baselines(evaluation: dict, min_validation_bars: int = MIN_VALIDATION_BARS) -> dict:
    """The promotion rule, on validation only: a validation window long enough to judge, a better
    backtest Sharpe than buy-and-hold and than flat, a lower RMSE than the zero forecast, and no look-ahead."""
    v = evaluation["validation"]
    problems = []
    bars = v.get("bars", v.get("rows", 0))
    if bars < min_validation_bars:
        problems.append(f"validation window of {bars} bars is too short to judge (need {min_validation_bars})")
    for name in BASELINES:
        if not v["bt_sharpe"] > v[f"{name}_bt_sharpe"]:
            problems.append(f"validation Sharpe {v['bt_sharpe']:.3f} does not beat {name} ({v[f'{name}_bt_sharpe']:.3f})")
    if not v["rmse"] < v["zero_rmse"]:
        problems.append(f"validation RMSE {v['rmse']:.6g} does not beat the zero forecast ({v['zero_rmse']:.6g})")
    if not evaluation["leakage_guard"]["passed"]:
        problems.append("the leakage guard found predictions that change when the future is cut off")
    return {"passed": not problems, "problems": problems}


# An LLM answers once per prompt: under this many validation prompts a mean reward is noise; and a model
# that cannot state an action in this share of answers is not one to trade on.
MIN_VALIDATION_PROMPTS = 50
MAX_INVALID_RATE = 0.2


def llm_beats_baselines(evaluation: dict, min_prompts: int = MIN_VALIDATION_PROMPTS,
                        max_invalid_rate: float = MAX_INVALID_RATE) -> dict:
    """The LLM promotion rule, on validation only: enough prompts, few invalid answers, and a mean
    realized reward above HOLD, always BUY and the best fixed action (the oracle is an upper bound, not a bar)."""
    v = evaluation["validation"]
    problems = []
    if v.get("n", 0) < min_prompts:
        problems.append(f"{v.get('n', 0)} validation prompts are too few to judge (need {min_prompts})")
    if v["invalid_rate"] > max_invalid_rate:
        problems.append(f"invalid-answer rate {v['invalid_rate']:.1%} above {max_invalid_rate:.0%}")
    for name in ("hold", "always_buy", "best_fixed"):
        bar = v.get(f"{name}_mean_reward")
        if bar is not None and not v["mean_reward"] > bar:
            problems.append(f"validation mean reward {v['mean_reward']:.5f} does not beat {name} ({bar:.5f})")
    return {"passed": not problems, "problems": problems}


def leaderboard_rows(evaluations: list[dict]) -> pd.DataFrame:
    """One row per evaluated model version, then one per baseline (from the newest evaluation's rows)."""
    rows = []
    for e in evaluations:
        row = {"entry": e["model"], "kind": e["kind"], "model_url": e["model_url"], "dataset_version": e["dataset_version"],
               "config_hash": e["config_hash"], "threshold": e["threshold"],
               "leakage_guard_passed": bool(e["leakage_guard"]["passed"])}
        for s in SPLITS:
            row |= {f"{s}_{k}": e[s].get(k) for k in ("rmse", "zero_rmse", "directional_accuracy", "ic_pearson",
                                                      "ic_rank", "label_accuracy", "label_macro_f1", "majority_accuracy",
                                                      "bt_sharpe", "bt_total_return", "bt_max_drawdown", "bt_turnover",
                                                      "bt_hit_rate")}
        wf = e.get("walk_forward") or {}
        row |= {f"walk_forward_{k}": wf.get(k) for k in ("folds", "rows", "rmse", "zero_rmse", "bt_sharpe",
                                                        "buy_and_hold_bt_sharpe", "bt_total_return",
                                                        "folds_beating_buy_and_hold")}
        rows.append(row)
    if evaluations:
        newest = evaluations[-1]
        for name in BASELINES:
            row = {"entry": name, "kind": "baseline", "dataset_version": newest["dataset_version"]}
            for s in SPLITS:
                row |= {f"{s}_bt_{k}": newest[s].get(f"{name}_bt_{k}") for k in
                        ("sharpe", "total_return", "max_drawdown", "turnover", "hit_rate")}
            row["walk_forward_bt_sharpe"] = (newest.get("walk_forward") or {}).get(f"{name}_bt_sharpe")
            rows.append(row)
        zero = {"entry": "zero_forecast", "kind": "baseline", "dataset_version": newest["dataset_version"]}
        for s in SPLITS:
            zero |= {f"{s}_rmse": newest[s]["zero_rmse"], f"{s}_bt_sharpe": 0.0}
        rows.append(zero)
    return pd.DataFrame(rows)


LLM_BASELINES = ("hold", "always_buy", "best_fixed", "oracle")


def llm_leaderboard_rows(evaluations: list[dict]) -> pd.DataFrame:
    """One row per evaluated LLM version (mean realized reward of its decoded actions, invalid-answer rate,
    latency), then HOLD, always BUY, the best fixed action (chosen on validation) and the oracle."""
    rows = []
    for e in evaluations:
        row = {"entry": e["model"], "kind": "llm", "model_url": e["model_url"], "device": e.get("device")}
        for s in SPLITS:
            row |= {f"{s}_{k}": e[s].get(k) for k in ("mean_reward", "invalid_rate", "latency_ms_p50", "n")}
        rows.append(row)
    if evaluations:
        newest = evaluations[-1]
        for name in LLM_BASELINES:
            label = f"best_fixed ({newest.get('best_fixed_action')})" if name == "best_fixed" else name
            rows.append({"entry": label, "kind": "baseline",
                         **{f"{s}_mean_reward": newest[s].get(f"{name}_mean_reward") for s in SPLITS}})
    return pd.DataFrame(rows)
