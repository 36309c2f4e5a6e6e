"""The dataset assets on a synthetic training table in DuckDB: files through the store, manifests
last, checks, HF datasets loading and TRL formats, versions that follow the table."""

import json

import pytest
from datasets import load_dataset

from btc_platform.datasets.storage import DatasetStore
from btc_platform_tests.defs.test_training_sensor import write_table
from btc_platform_tests.synthetic_tables import training_table

LLM_RUN_CONFIG = {"ops": {"llm_instructions_1h": {"config": {"horizon": "24h"}}}}


@pytest.fixture
def built(run, platform_env):
    write_table(platform_env["BTC_PLATFORM_DUCKDB_PATH"], training_table(days=24, seed=4))
    result = run(["training_splits_1h", "llm_instructions_1h", "llm_preferences_1h"], run_config=LLM_RUN_CONFIG)
    events = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    checks = {(c.asset_key.to_user_string(), c.check_name): c.passed for c in result.get_asset_check_evaluations()}
    return DatasetStore(platform_env["BTC_PLATFORM_DATASETS_DIR"]), events, checks


def test_every_dataset_is_published_with_passing_checks(built):
    store, events, checks = built
    assert all(checks.values()), {k: v for k, v in checks.items() if not v}
    assert len(checks) == 8 + 6 + 6  # each with partial_bars and single_origin
    for asset, dataset in (("training_splits_1h", "training_splits_1h"),
                           ("llm_instructions_1h", "llm_instructions_1h/horizon=24h"),
                           ("llm_preferences_1h", "llm_preferences_1h")):
        version = events[asset]["version"].value
        manifest = store.manifest(dataset, version)
        assert manifest["version"] == version and manifest["source"]["table"].startswith("marts.training_table")
        assert manifest["source"]["fred_vintage_cutoff"] and manifest["code_version"] != "unknown"
        assert set(manifest["files"]) == set(store.list_files(dataset, version))
        assert manifest["provenance"]["vendors"]["coinbase"] > 0
        card = store.read_bytes(dataset, version, "README.md").decode()
        assert f"version {version}" in card and "## Splits" in card


def test_hf_datasets_and_trl_shapes(built, tmp_path):
    store, events, _ = built
    local = store.download("llm_instructions_1h/horizon=24h", events["llm_instructions_1h"]["version"].value,
                           tmp_path / "sft")
    alpaca = load_dataset("json", data_files={"train": str(local / "alpaca/train.jsonl")}, cache_dir=str(tmp_path / "c"))
    row = alpaca["train"][0]
    assert {"instruction", "input", "output", "asset_symbol", "asset_class"} <= set(row)
    assert "predicted_return_24h" in json.loads(row["output"]) and "target" not in row["input"]
    pc = load_dataset("json", data_files=str(local / "prompt_completion/train.jsonl"), cache_dir=str(tmp_path / "c"))
    assert [m["role"] for m in pc["train"][0]["prompt"]] == ["system", "user"]
    assert pc["train"][0]["completion"][0]["role"] == "assistant"

    prefs = store.download("llm_preferences_1h", events["llm_preferences_1h"]["version"].value, tmp_path / "prefs")
    dpo = load_dataset("parquet", data_files=str(prefs / "dpo/train.parquet"), cache_dir=str(tmp_path / "c"))["train"]
    assert all(isinstance(dpo[0][k], str) for k in ("prompt", "chosen", "rejected"))
    assert min(dpo["score_margin"]) > 0 and dpo[0]["reward"] == dpo[0]["chosen_score"]
    grpo = load_dataset("json", data_files=str(prefs / "grpo/train.jsonl"), cache_dir=str(tmp_path / "c"))["train"]
    assert {"prompt", "realized_return_24h", "score_buy", "filled_limit_buy_50bps"} <= set(grpo.column_names)


def test_split_files_and_version_reuse(built, run, platform_env):
    store, events, _ = built
    version = events["training_splits_1h"]["version"].value
    npz = store.read_npz("training_splits_1h", version, "splits.npz")
    train = store.read_parquet("training_splits_1h", version, "train.parquet")
    assert npz["X_train"].shape == (len(train), len(npz["feature_names"]))
    assert "gold_price" not in list(npz["feature_names"])  # all null in the table
    again = run(["training_splits_1h"])
    [event] = again.get_asset_materialization_events()
    assert event.materialization.metadata["version"].value == version
    assert event.materialization.metadata["reused"].value is True


def test_ninety_day_horizon_without_rows_yet_is_skipped_and_says_why(run, platform_env):
    write_table(platform_env["BTC_PLATFORM_DUCKDB_PATH"], training_table(days=20, seed=5))
    result = run(["llm_instructions_1h"], run_config={"ops": {"llm_instructions_1h": {"config": {"horizon": "90d"}}}})
    # Nothing materialized (no empty version for training to pick up) and no check failed: it says why.
    assert result.success and result.get_asset_materialization_events() == []
    assert [c for c in result.get_asset_check_evaluations() if not c.passed] == []
    [observed] = [e.asset_observation_data.asset_observation for e in result.all_events
                  if e.event_type_value == "ASSET_OBSERVATION"]
    assert observed.metadata["horizon"].value == "90d"
    assert "horizon 90d has no rows yet" in observed.metadata["skipped"].value
