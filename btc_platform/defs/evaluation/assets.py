"""Judging trained models: an evaluation per numeric model (on each new version), the leaderboard of every
evaluated version against the baselines, and the champion promoted on validation only.

Numeric evaluations run in the Dagster process: XGBoost and a small LSTM predict on the CPU in seconds.
LLM evaluations generate answers, so they run as a Pipes process on the training launcher (a GPU pod
in production), like the trainers.
"""

import base64
import json
import posixpath
from pathlib import Path

import dagster as dg
import pandas as pd

from btc_platform.defs.resources import ArtifactsResource, WarehouseResource
from btc_platform.defs.training.launcher import TrainingLauncherResource
from btc_platform.storage import open_url

NUMERIC_MODELS = ["xgboost_baseline_1h", "lstm_1h"]
LLM_MODELS = ["sft_lora_1h", "dpo_lora_1h", "grpo_dapo_1h"]
PREFERENCES = "llm_preferences_1h"  # the prompts and realized rewards every LLM is judged on
TARGET = "target_return_1h"
LLM_TARGET = "action_24h"
EVALUATION_FILE = "evaluation.json"
LEADERBOARD_TABLE = "monitoring.model_leaderboard"
EAGER = dg.AutomationCondition.eager()


class EvaluationConfig(dg.Config):
    # Charged on every fill, entry and exit alike (bps per side).
    fee_bps: float = 10.0
    slippage_bps: float = 2.0
    # A model version folder to evaluate; empty means the one the model asset materialized last.
    model_url: str = ""


def _write_json(url: str, payload) -> None:
    fs, path = open_url(url)
    fs.pipe_file(path, json.dumps(payload, indent=2, sort_keys=True, default=str).encode())


def evaluation_asset(model: str) -> dg.AssetsDefinition:
    name = f"evaluation_{model}"

    @dg.asset(name=name, group_name="evaluation", deps=[model], kinds={"python"}, automation_condition=EAGER,
              check_specs=[dg.AssetCheckSpec("no_lookahead", asset=name, blocking=True,
                                             description="20 test predictions rebuilt with the future cut off are identical")],
              description=f"Out-of-sample evaluation of each new `{model}` version on the validation and test parts of "
              "its dataset: RMSE vs the zero forecast, direction, information coefficient, label accuracy, and a "
              "backtest (threshold chosen on validation, fees and slippage on every fill) against buy-and-hold and flat.")
    def _evaluate(context: dg.AssetExecutionContext, config: EvaluationConfig) -> dg.MaterializeResult:
        from btc_platform.evaluation.backtest import Costs
        from btc_platform.evaluation.judge import evaluate_numeric

        record = context.instance.get_latest_materialization_event(dg.AssetKey(model))
        if record is None and not config.model_url:
            raise dg.Failure(f"{model} has never been trained: nothing to evaluate")
        meta = record.asset_materialization.metadata if record else {}
        url = config.model_url or meta["model_path"].value
        try:
            evaluation = evaluate_numeric(url, Costs(config.fee_bps, config.slippage_bps))
        except FileNotFoundError as exc:
            raise dg.Failure(f"{model} version at {url}: {exc}") from exc
        if "registered_version" in meta and not config.model_url:
            evaluation["registered_version"] = meta["registered_version"].value
        _write_json(f"{url.rstrip('/')}/{EVALUATION_FILE}", evaluation)
        v, t = evaluation["validation"], evaluation["test"]
        guard = evaluation["leakage_guard"]
        return dg.MaterializeResult(
            metadata={"model_url": dg.MetadataValue.path(url), "threshold": evaluation["threshold"],
                      **{f"test_{k}": float(t[k]) for k in ("rmse", "zero_rmse", "directional_accuracy", "ic_pearson",
                                                            "ic_rank", "bt_sharpe", "bt_total_return", "bt_max_drawdown",
                                                            "bt_turnover", "buy_and_hold_bt_sharpe") if k in t},
                      **{f"validation_{k}": float(v[k]) for k in ("rmse", "zero_rmse", "bt_sharpe",
                                                                  "buy_and_hold_bt_sharpe") if k in v}},
            check_results=[dg.AssetCheckResult(check_name="no_lookahead", passed=bool(guard["passed"]),
                                               metadata={"details": dg.MetadataValue.json(json.loads(json.dumps(guard, default=str)))})],
        )

    return _evaluate


class LLMEvaluationConfig(dg.Config):
    max_prompts: int = 64  # per split, the first in time order
    max_new_tokens: int = 48


def llm_evaluation_asset(model: str) -> dg.AssetsDefinition:
    name = f"evaluation_{model}"

    @dg.asset(name=name, group_name="evaluation", deps=[model, PREFERENCES], kinds={"pytorch"}, pool="gpu",
              automation_condition=EAGER,
              description=f"Out-of-sample evaluation of each new `{model}` version: greedy answers to the validation and "
              f"test prompts of `{PREFERENCES}`, decoded into actions; invalid-answer rate, mean realized reward (the "
              "preference data's reward columns) against HOLD, always BUY, the best fixed action chosen on validation "
              "and the oracle's upper bound, and the latency per answer. A Pipes process on the training launcher.")
    def _evaluate(context: dg.AssetExecutionContext, config: LLMEvaluationConfig,
                  training_launcher: TrainingLauncherResource) -> dg.MaterializeResult:
        trained = context.instance.get_latest_materialization_event(dg.AssetKey(model))
        prefs = context.instance.get_latest_materialization_event(dg.AssetKey(PREFERENCES))
        if trained is None or prefs is None:
            raise dg.Failure(f"{model if trained is None else PREFERENCES} has never been materialized: nothing to evaluate")
        model_url = trained.asset_materialization.metadata["model_path"].value
        prefs_url = prefs.asset_materialization.metadata["path"].value
        extras = {"model": model, "model_url": model_url, "model_dir": model_url, "preferences_url": prefs_url,
                  "dataset_dir": prefs_url, "max_prompts": config.max_prompts, "max_new_tokens": config.max_new_tokens}
        return training_launcher.run(context, "btc_platform.evaluation.llm_eval", extras)

    return _evaluate


EVALUATION_ASSETS = [evaluation_asset(m) for m in NUMERIC_MODELS]
LLM_EVALUATION_ASSETS = [llm_evaluation_asset(m) for m in LLM_MODELS]


def all_evaluations(models_dir: str, models: list[str] = NUMERIC_MODELS) -> list[dict]:
    """Every evaluated version of `models`, oldest first."""
    root = models_dir if "://" in models_dir else str(Path(models_dir).resolve())
    fs, base = open_url(root)
    found = []
    for model in models:
        for path in fs.glob(posixpath.join(base, model, "dataset=*", "config=*", EVALUATION_FILE)):
            found.append((fs.modified(path) if hasattr(fs, "modified") else 0, json.loads(fs.cat_file(path))))
    return [e for _, e in sorted(found, key=lambda item: item[0])]


def _markdown(frame: pd.DataFrame, champion_url: str | None) -> str:
    cols = ["entry", "dataset_version", "config_hash", "validation_bt_sharpe", "test_bt_sharpe", "test_bt_total_return",
            "test_bt_max_drawdown", "test_rmse", "test_directional_accuracy", "test_ic_rank", "test_label_accuracy",
            "walk_forward_folds", "walk_forward_bt_sharpe", "walk_forward_buy_and_hold_bt_sharpe"]
    shown = frame.reindex(columns=cols).copy()
    shown.insert(0, "champion", ["*" if u and u == champion_url else "" for u in frame.get("model_url", [None] * len(frame))])
    return shown.to_markdown(index=False, floatfmt=".4g")


@dg.asset(group_name="evaluation", deps=[a.key for a in [*EVALUATION_ASSETS, *LLM_EVALUATION_ASSETS]],
          kinds={"duckdb", "png", "svg"},
          automation_condition=EAGER,
          description=f"Every evaluated model version for {TARGET}, one row each with its validation and test figures, "
          f"and the baselines (buy-and-hold, flat, zero forecast); in `{LEADERBOARD_TABLE}`, as a Markdown table and "
          "as a chart of the test equity curves (PNG inline, SVG beside it).")
def model_leaderboard_1h(context: dg.AssetExecutionContext, artifacts: ArtifactsResource,
                         warehouse: WarehouseResource) -> dg.MaterializeResult:
    from btc_platform.evaluation.charts import equity_chart
    from btc_platform.evaluation.judge import leaderboard_rows, llm_leaderboard_rows
    from btc_platform.training.champions import read_champion

    evaluations = all_evaluations(artifacts.models_dir)
    llm_evaluations = all_evaluations(artifacts.models_dir, LLM_MODELS)
    if not evaluations:
        raise dg.Failure("no evaluated model version yet: materialize the evaluation assets first")
    frame = leaderboard_rows(evaluations)
    frame["target"] = TARGET
    rows = warehouse.replace_partition(LEADERBOARD_TABLE, frame.astype({"dataset_version": str}), {"target": TARGET},
                                       description="Every evaluated model version and the baselines, per target.")
    llm_frame = llm_leaderboard_rows(llm_evaluations)
    if len(llm_frame):
        llm_frame["target"] = LLM_TARGET
        rows += warehouse.replace_partition(LEADERBOARD_TABLE, llm_frame, {"target": LLM_TARGET})
    png, svg = equity_chart(evaluations, llm_frame)
    base = f"{artifacts.models_dir.rstrip('/')}/_reports/leaderboard_{TARGET}"
    for suffix, data in (("png", png), ("svg", svg)):
        fs, path = open_url(f"{base}.{suffix}")
        fs.makedirs(posixpath.dirname(path), exist_ok=True)
        fs.pipe_file(path, data)
    champion = read_champion(artifacts.models_dir, TARGET)
    table = _markdown(frame, (champion or {}).get("model_url"))
    if len(llm_frame):
        cols = ["entry", "validation_mean_reward", "test_mean_reward", "test_invalid_rate", "test_latency_ms_p50"]
        table += (f"\n\n{LLM_TARGET} (mean realized 24h reward of the decoded action; invalid answers earn 0):\n\n"
                  + llm_frame.reindex(columns=cols).to_markdown(index=False, floatfmt=".4g"))
    context.log.info("leaderboard:\n" + table)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows, "leaderboard": dg.MetadataValue.md(table),
        "chart": dg.MetadataValue.md(f"![test equity](data:image/png;base64,{base64.b64encode(png).decode()})"),
        "svg": dg.MetadataValue.path(f"{base}.svg"), "png": dg.MetadataValue.path(f"{base}.png"),
    })


def champion_asset(name: str, target: str, models: list[str], rule_name: str, check: str,
                   baselines: str) -> dg.AssetsDefinition:
    """The champion of `target` among the evaluated versions of `models`, promoted by `rule_name`
    (btc_platform.evaluation.promotion) only when its blocking check passes."""

    @dg.asset(name=name, group_name="evaluation", deps=[model_leaderboard_1h], kinds={"mlflow"},
              automation_condition=EAGER,
              check_specs=[dg.AssetCheckSpec(check, asset=name, blocking=True,
                                             description=f"the best model on validation beats {baselines} on "
                                             "validation, over a window long enough to judge; otherwise nothing is promoted")],
              description=f"The champion for {target}: the best evaluated version on validation (never test), promoted "
              f"only when it beats {baselines} there. Sets the MLflow alias `champion` and the champion pointer the "
              "serving app follows; promotions and demotions are recorded with their reasons.")
    def _champion(context: dg.AssetExecutionContext, artifacts: ArtifactsResource,
                  training_launcher: TrainingLauncherResource) -> dg.MaterializeResult:
        from btc_platform.evaluation import promotion
        from btc_platform.training import champions

        evaluations = all_evaluations(artifacts.models_dir, models)
        current = champions.read_champion(artifacts.models_dir, target)
        decision = promotion.decide(evaluations, current, getattr(promotion, rule_name))
        alias = set_alias(training_launcher.tracking_uri(), decision)
        if decision.action == "promote":
            c = decision.candidate
            champions.write_champion(artifacts.models_dir, target, {
                "target": target, "model": c["model"], "model_url": c["model_url"],
                "dataset_version": c.get("dataset_version"), "config_hash": c.get("config_hash"),
                "registered_version": c.get("registered_version"), "promoted_at": champions.now(),
                "reason": decision.reason, "validation": c["validation"]})
        elif decision.action == "demote":
            champions.write_champion(artifacts.models_dir, target, None)
        for event in decision.events:
            champions.record_event(artifacts.models_dir, target, event)
        context.log.info(f"{decision.action}: {decision.reason}")
        now = champions.read_champion(artifacts.models_dir, target)
        return dg.MaterializeResult(
            metadata={"action": decision.action, "reason": decision.reason, "mlflow_alias": alias,
                      "champion": (now or {}).get("model", "none"),
                      "champion_url": dg.MetadataValue.path((now or {}).get("model_url", "")),
                      "events": dg.MetadataValue.json(decision.events)},
            check_results=[dg.AssetCheckResult(check_name=check, passed=bool(decision.verdict["passed"]),
                                               metadata={"problems": dg.MetadataValue.json(decision.verdict["problems"])})],
        )

    return _champion


model_champion_1h = champion_asset("model_champion_1h", TARGET, NUMERIC_MODELS, "NUMERIC",
                                   "beats_every_baseline_on_validation",
                                   "buy-and-hold, flat and the zero forecast")
model_champion_action_24h = champion_asset("model_champion_action_24h", LLM_TARGET, LLM_MODELS, "LLM",
                                           "beats_every_llm_baseline_on_validation",
                                           "HOLD, always BUY and the best fixed action")


def set_alias(tracking_uri: str, decision) -> str:
    """Move the registry alias `champion` with the pointer; MLflow missing or failing leaves the pointer only."""
    if decision.action not in ("promote", "demote"):
        return "unchanged"
    try:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=tracking_uri)
        if decision.action == "demote" and decision.demoted:
            client.delete_registered_model_alias(decision.demoted["model"], "champion")
            return f"removed from {decision.demoted['model']}"
        c = decision.candidate
        if decision.demoted and decision.demoted.get("model") != c["model"]:
            client.delete_registered_model_alias(decision.demoted["model"], "champion")
        version = c.get("registered_version") or registered_version_of(client, c["model"], c["model_url"])
        if version is None:
            return "no registered version: pointer only"
        client.set_registered_model_alias(c["model"], "champion", str(version))
        return f"{c['model']} version {version}"
    except Exception as exc:  # noqa: BLE001 - the pointer is the source of truth for serving
        return f"not set ({type(exc).__name__}: {exc})"


def registered_version_of(client, model: str, model_url: str) -> str | None:
    """The registry version whose `model_url` tag names this model version folder (LLM evaluations run
    outside Dagster and do not carry it)."""
    versions = client.search_model_versions(f"name = '{model}'")
    found = [v.version for v in versions if (v.tags or {}).get("model_url") == model_url]
    return max(found, key=int) if found else None
