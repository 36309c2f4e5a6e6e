"""The training sensor trains every model once per new dataset version whose blocking checks passed."""

import json
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from btc_platform.defs.training.assets import MODELS
from btc_platform.defs.training.sensors import BLOCKING_CHECKS, train_on_new_dataset
from btc_platform_tests.synthetic_tables import training_table as synthetic_table

LLM_RUN_CONFIG = {"ops": {"llm_instructions_1h": {"config": {"horizon": "24h"}}}}


def training_table(seed: int, days: int = 30) -> pd.DataFrame:
    return synthetic_table(days=days, seed=seed)


def write_table(path: str, frame: pd.DataFrame) -> None:
    with duckdb.connect(path) as con:
        con.execute("create schema if not exists marts")
        con.execute("create or replace table marts.training_table_1h as select * from frame")


def tick(instance, cursor=None):
    from btc_platform.definitions import defs

    with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs) as context:
        result = train_on_new_dataset(context)
        return result, context.cursor


def by_model(result) -> dict[str, dg.RunRequest]:
    assert isinstance(result, dg.SensorResult), result
    return {r.tags["model"]: r for r in result.run_requests}


def test_every_dataset_has_its_models():
    assert {m.dataset for m in MODELS} == {"training_splits_1h", "llm_instructions_1h", "llm_preferences_1h"}
    assert {m.name: m.dataset for m in MODELS} == {
        "xgboost_baseline_1h": "training_splits_1h", "lstm_1h": "training_splits_1h",
        "sft_lora_1h": "llm_instructions_1h", "dpo_lora_1h": "llm_preferences_1h",
        "grpo_dapo_1h": "llm_preferences_1h"}


def test_new_version_trains_once_and_a_rebuild_of_the_same_data_does_not(run, instance, platform_env):
    write_table(platform_env["BTC_PLATFORM_DUCKDB_PATH"], training_table(seed=1))
    skipped, cursor = tick(instance)
    assert isinstance(skipped, dg.SkipReason) and "never been materialized" in skipped.skip_message

    run(["training_splits_1h"])
    requests, cursor = tick(instance, cursor)
    requests = by_model(requests)
    assert set(requests) == {"xgboost_baseline_1h", "lstm_1h"}
    xgb = requests["xgboost_baseline_1h"]
    version, cfg_hash = xgb.tags["dataset_version"], xgb.tags["config_hash"]
    assert xgb.run_key == f"xgboost_baseline_1h:{version}:{cfg_hash}"
    assert xgb.asset_selection == [dg.AssetKey("xgboost_baseline_1h")]

    trained = run(["xgboost_baseline_1h"], run_config=xgb.run_config, tags=xgb.tags)
    [event] = trained.get_asset_materialization_events()
    metrics = event.materialization.metadata
    assert metrics["rmse"].value < metrics["zero_rmse"].value  # the target is learnable here
    # The model version: by model, dataset version and config, with its card, and registered in MLflow.
    model_dir = Path(platform_env["BTC_PLATFORM_MODELS_DIR"]) / "xgboost_baseline_1h" / f"dataset={version}" / f"config={cfg_hash}"
    assert metrics["model_path"].value == str(model_dir)
    card = json.loads((model_dir / "model_card.json").read_text())
    assert card["dataset_version"] == version and card["config_hash"] == cfg_hash
    assert card["metrics"]["rmse"] == pytest.approx(metrics["rmse"].value)
    assert metrics["registered_version"].value == 1

    again, cursor = tick(instance, cursor)
    assert isinstance(again, dg.SkipReason) and "no new dataset" in again.skip_message

    run(["training_splits_1h"])  # same table -> same version
    rebuilt, cursor = tick(instance, cursor)
    rebuilt = by_model(rebuilt)
    # XGBoost trained on this version already; the LSTM request repeats its run key, which Dagster
    # launches at most once.
    assert set(rebuilt) == {"lstm_1h"}
    assert rebuilt["lstm_1h"].run_key == requests["lstm_1h"].run_key

    write_table(platform_env["BTC_PLATFORM_DUCKDB_PATH"], training_table(seed=2))
    run(["training_splits_1h"])
    fresh, cursor = tick(instance, cursor)
    fresh = by_model(fresh)
    assert fresh["xgboost_baseline_1h"].tags["dataset_version"] != version


def test_failed_blocking_checks_keep_training_off(run, instance, platform_env, monkeypatch):
    import btc_platform.defs.datasets.assets as dataset_assets

    write_table(platform_env["BTC_PLATFORM_DUCKDB_PATH"], training_table(seed=3))
    monkeypatch.setattr(dataset_assets, "MIN_ROWS_PER_SPLIT", 10**6)
    result = run(["training_splits_1h"], raise_on_error=False)
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert set(BLOCKING_CHECKS["training_splits_1h"]) == {"required_completeness", "targets_present", "no_long_gaps",
                                                          "splits_purged", "splits_large_enough", "partial_bars",
                                                          "single_origin"}
    assert checks["splits_large_enough"] is False
    assert all(checks[name] for name in BLOCKING_CHECKS["training_splits_1h"] if name != "splits_large_enough")
    skipped, _ = tick(instance)
    assert isinstance(skipped, dg.SkipReason) and "blocking checks did not pass" in skipped.skip_message


def test_llm_datasets_trigger_their_models_with_the_base_model_in_the_config(run, instance, platform_env,
                                                                             monkeypatch):
    write_table(platform_env["BTC_PLATFORM_DUCKDB_PATH"], training_table(seed=4))
    run(["llm_instructions_1h", "llm_preferences_1h"], run_config=LLM_RUN_CONFIG)
    monkeypatch.setenv("BTC_PLATFORM_BASE_MODEL", "/models/base-a")
    first, cursor = tick(instance)
    first = by_model(first)
    assert set(first) == {"sft_lora_1h", "dpo_lora_1h", "grpo_dapo_1h"}
    assert first["dpo_lora_1h"].tags["dataset_version"] == first["grpo_dapo_1h"].tags["dataset_version"]
    # Another base model is another configuration: the same data trains again under a new hash.
    monkeypatch.setenv("BTC_PLATFORM_BASE_MODEL", "/models/base-b")
    run(["llm_preferences_1h"])
    second = by_model(tick(instance, cursor)[0])
    assert set(second) == {"dpo_lora_1h", "grpo_dapo_1h"}
    assert second["dpo_lora_1h"].tags["config_hash"] != first["dpo_lora_1h"].tags["config_hash"]


def test_a_version_without_manifest_is_refused_by_name(run, instance, platform_env):
    write_table(platform_env["BTC_PLATFORM_DUCKDB_PATH"], training_table(seed=5))
    built = run(["training_splits_1h"])
    [event] = built.get_asset_materialization_events()
    folder = Path(event.materialization.metadata["path"].value)
    (folder / "manifest.json").unlink()  # an interrupted build
    result = run(["lstm_1h"], raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "manifest.json" in failure.event_specific_data.error.message
    assert str(folder) in failure.event_specific_data.error.message
    assert not (Path(platform_env["BTC_PLATFORM_MODELS_DIR"]) / "lstm_1h").exists()
