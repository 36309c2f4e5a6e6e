"""The training sensor fires once per new dataset version whose blocking checks passed."""

import dagster as dg
import duckdb
import pandas as pd

from btc_platform.defs.training.sensors import BLOCKING_CHECKS, train_on_new_dataset
from btc_platform_tests.synthetic_tables import training_table as synthetic_table


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


def test_new_version_trains_once_and_a_rebuild_of_the_same_data_does_not(run, instance, platform_env):
    write_table(platform_env["BTC_PLATFORM_DUCKDB_PATH"], training_table(seed=1))
    skipped, cursor = tick(instance)
    assert isinstance(skipped, dg.SkipReason) and "never been materialized" in skipped.skip_message

    run(["training_splits_1h"])
    request, cursor = tick(instance, cursor)
    assert isinstance(request, dg.RunRequest)
    version = request.tags["dataset_version"]
    assert request.run_key == f"xgboost_baseline_1h:{version}"

    trained = run(["xgboost_baseline_1h"], run_config=request.run_config, tags=request.tags)
    [event] = trained.get_asset_materialization_events()
    metrics = event.materialization.metadata
    assert metrics["rmse"].value < metrics["zero_rmse"].value  # the target is learnable here

    again, cursor = tick(instance, cursor)
    assert isinstance(again, dg.SkipReason) and "no new dataset" in again.skip_message

    run(["training_splits_1h"])  # same table -> same version
    rebuilt, cursor = tick(instance, cursor)
    assert isinstance(rebuilt, dg.SkipReason) and "already trained" in rebuilt.skip_message

    write_table(platform_env["BTC_PLATFORM_DUCKDB_PATH"], training_table(seed=2))
    run(["training_splits_1h"])
    fresh, cursor = tick(instance, cursor)
    assert isinstance(fresh, dg.RunRequest) and fresh.tags["dataset_version"] != version


def test_failed_blocking_checks_keep_training_off(run, instance, platform_env, monkeypatch):
    import btc_platform.defs.datasets.assets as dataset_assets

    write_table(platform_env["BTC_PLATFORM_DUCKDB_PATH"], training_table(seed=3))
    monkeypatch.setattr(dataset_assets, "MIN_ROWS_PER_SPLIT", 10**6)
    result = run(["training_splits_1h"], raise_on_error=False)
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert set(BLOCKING_CHECKS) == {"required_completeness", "targets_present", "no_long_gaps", "splits_purged",
                                    "splits_large_enough"}
    assert checks["splits_large_enough"] is False
    assert all(checks[name] for name in BLOCKING_CHECKS if name != "splits_large_enough")
    skipped, _ = tick(instance)
    assert isinstance(skipped, dg.SkipReason) and "blocking checks did not pass" in skipped.skip_message
