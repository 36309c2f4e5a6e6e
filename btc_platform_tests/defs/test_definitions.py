"""The code location loads, validates, and shows the seven groups of the asset graph."""

import subprocess
import sys
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parents[2]
GROUPS = {"ingest", "processed", "monitoring", "warehouse", "datasets", "training", "evaluation"}


def test_definitions_load_with_every_group_schedule_and_sensor():
    from btc_platform.definitions import defs

    specs = {spec.key.to_user_string(): spec.group_name for spec in defs.resolve_all_asset_specs()}
    assert set(specs.values()) == GROUPS
    assert specs["coinbase_candles_1m"] == "ingest" and specs["training_table_1h"] == "warehouse"
    assert defs.resolve_job_def("coinbase_daily_ingest") is not None
    assert defs.resolve_schedule_def("coinbase_daily_ingest_schedule").cron_schedule == "10 0 * * *"
    assert defs.resolve_sensor_def("train_on_new_dataset") is not None
    checks = {key.name for key in defs.resolve_asset_graph().asset_check_keys}
    assert {"no_duplicates", "ohlc_valid", "within_partition", "coverage", "splits_purged", "no_lookahead",
            "beats_every_baseline_on_validation"} <= checks


def test_the_dbt_source_maps_onto_the_warehouse_load_assets():
    from btc_platform.definitions import defs

    graph = defs.resolve_asset_graph()
    parents = {k.to_user_string() for k in graph.get(dg.AssetKey("stg_technical_features_1h")).parent_keys}
    assert parents == {"warehouse_technical_features_1h"}


def test_dagster_definitions_validate_passes():
    dagster = Path(sys.executable).parent / "dagster"
    done = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation successful" in done.stdout + done.stderr
