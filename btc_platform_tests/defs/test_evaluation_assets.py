"""Trained models are judged out of sample, ranked with the baselines, and the champion follows the rule."""

import json
from pathlib import Path

import dagster as dg

from btc_platform.defs.evaluation.assets import LEADERBOARD_TABLE, all_evaluations
from btc_platform.evaluation.promotion import decide
from btc_platform.training import champions
from btc_platform.warehouse.duckdb_store import read_table
from btc_platform_tests.defs.test_training_sensor import training_table, write_table

FAST_LSTM = {"ops": {"lstm_1h": {"config": {"params": {"max_epochs": 8, "hidden_size": 16}}}}}


def test_models_are_evaluated_ranked_and_the_champion_follows_the_rule(run, instance, platform_env):
    write_table(platform_env["BTC_PLATFORM_DUCKDB_PATH"], training_table(seed=11))
    run(["training_splits_1h"], run_config={"ops": {"training_splits_1h": {"config": {"n_folds": 3}}}})
    run(["xgboost_baseline_1h"])
    run(["lstm_1h"], run_config=FAST_LSTM)
    result = run(["evaluation_xgboost_baseline_1h", "evaluation_lstm_1h"])
    checks = {c.asset_key.to_user_string(): c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"evaluation_xgboost_baseline_1h": True, "evaluation_lstm_1h": True}  # no look-ahead

    models = Path(platform_env["BTC_PLATFORM_MODELS_DIR"])
    evaluations = all_evaluations(str(models))
    assert {e["model"] for e in evaluations} == {"xgboost_baseline_1h", "lstm_1h"}
    for e in evaluations:
        on_disk = json.loads((Path(e["model_url"]) / "evaluation.json").read_text())
        assert on_disk["threshold"] == e["threshold"] >= 0
        for split in ("validation", "test"):
            figures = e[split]
            assert figures["rows_predicted"] > 0 and figures["rmse"] > 0 and "ic_rank" in figures
            assert figures["flat_bt_sharpe"] == 0 and figures["flat_bt_total_return"] == 0
            assert figures["buy_and_hold_bt_turnover"] > 0
        # Walk-forward: every fold's test window, each judged by the model fitted on that fold alone.
        wf = e["walk_forward"]
        assert wf["folds"] == 3 and sorted(wf["per_fold"]) == ["0", "1", "2"]
        trained = [json.loads((Path(e["model_url"]) / "folds" / f"fold={k}" / "metrics.json").read_text())["n_train"]
                   for k in (0, 1)] + [json.loads((Path(e["model_url"]) / "metrics.json").read_text())["n_train"]]
        assert trained == sorted(trained) and len(set(trained)) == 3  # expanding window: older folds saw less
        windows = [(f["test_start"], f["test_end"]) for _, f in sorted(wf["per_fold"].items())]
        assert all(end < nxt for (_, end), (nxt, _) in zip(windows, windows[1:]))  # consecutive, disjoint
        assert wf["per_fold"]["2"]["bt_sharpe"] == e["test"]["bt_sharpe"]  # the newest fold is the version's own
        assert wf["rows"] == sum(f["rows"] for f in wf["per_fold"].values()) and len(wf["curves"]["model"]) > 0
    lstm = next(e for e in evaluations if e["model"] == "lstm_1h")
    assert "label_accuracy" in lstm["test"] and "majority_accuracy" in lstm["test"]

    board = run(["model_leaderboard_1h"])
    [event] = board.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert "buy_and_hold" in metadata["leaderboard"].value and "data:image/png;base64," in metadata["chart"].value
    assert Path(metadata["svg"].value).read_text().lstrip().startswith("<?xml")
    table = read_table(platform_env["BTC_PLATFORM_DUCKDB_PATH"], LEADERBOARD_TABLE)
    assert sorted(table["entry"]) == sorted(["xgboost_baseline_1h", "lstm_1h", "buy_and_hold", "flat", "zero_forecast"])

    promoted = run(["model_champion_1h"], raise_on_error=False)  # a failed blocking check fails the run
    [check] = promoted.get_asset_check_evaluations()
    expected = decide(evaluations, None)
    assert check.passed == expected.verdict["passed"]
    pointer = champions.read_champion(str(models), "target_return_1h")
    if expected.action == "promote":  # whichever way the synthetic data falls, the rule is applied
        assert pointer["model_url"] == expected.candidate["model_url"]
        assert champions.history(str(models), "target_return_1h")[-1]["event"] == "promotion"
    else:
        assert pointer is None and expected.action == "none" and not promoted.success


def test_evaluating_a_model_that_was_never_trained_fails_by_name(run, instance, platform_env):
    result = run(["evaluation_lstm_1h"], raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "lstm_1h has never been trained" in failure.event_specific_data.error.message
    assert dg.AssetKey("evaluation_lstm_1h")
