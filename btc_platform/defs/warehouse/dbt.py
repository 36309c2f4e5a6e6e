"""dbt models over the warehouse tables (dagster-dbt): sources map to the load assets by key."""


import json
import os
import sys
from datetime import timedelta
from pathlib import Path

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from btc_platform.config import project_root
from btc_platform.defs.automation import LONG_LOOKBACK_DAYS, eager_over_history
from btc_platform.defs.partitions import daily
from btc_platform.defs.resources import WarehouseResource

DBT_PROJECT_DIR = project_root() / "dbt_project"
dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_executable() -> str:
    # The venv's dbt, so a definitions load doesn't depend on PATH (STACK.md: "dbt not found").
    local = Path(sys.executable).parent / "dbt"
    return str(local) if local.exists() else "dbt"


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())


def manifest_is_stale() -> bool:
    """No manifest (a fresh clone), or a model, macro or config edited since it was written."""
    if not dbt_project.manifest_path.exists():
        return True
    built = dbt_project.manifest_path.stat().st_mtime
    sources = [p for d in ("models", "macros", "tests") for p in (DBT_PROJECT_DIR / d).rglob("*") if p.is_file()]
    sources += [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    return any(p.stat().st_mtime > built for p in sources)


if manifest_is_stale():
    # Parse (offline, a few seconds) so the assets match the models on disk.
    dbt_resource().cli(["parse"], target_path=dbt_project.target_path).wait()


class WarehouseTranslator(DagsterDbtTranslator):
    def get_asset_key(self, dbt_resource_props) -> dg.AssetKey:
        # Models are keyed by name alone (training_table_1h), whatever schema dbt builds them in;
        # sources keep their meta mapping to the load assets.
        if dbt_resource_props["resource_type"] == "model":
            return dg.AssetKey(dbt_resource_props["name"])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props) -> str:
        return "warehouse"

    def get_automation_condition(self, dbt_resource_props):
        if "monitoring" in dbt_resource_props["fqn"]:
            # Monitoring views read their tables live: built once, and again only when their SQL changes.
            return VIEW_AUTOMATION
        # A day (of any age) rebuilds when its loads land, again when its targets land days later, and
        # once more at D+90 for the 90-day targets (absent until then, so they never hold a day back).
        return eager_over_history(LONG_LOOKBACK_DAYS, dg.AssetSelection.assets(*OPTIONAL_SOURCES))


# Sources that are legitimately absent for recent days: the marts build without them.
OPTIONAL_SOURCES = ["warehouse_forward_targets_90d_1h"]
VIEW_AUTOMATION = (dg.AutomationCondition.missing().newly_true() | dg.AutomationCondition.code_version_changed()) \
    & ~dg.AutomationCondition.in_progress()
MONITORING = "path:models/monitoring"


def partition_vars(context: dg.AssetExecutionContext) -> dict[str, str]:
    """The run's day window for the incremental models: one day (automation, the UI) or a backfill
    range, which runs as one dbt build. A run without partitions rebuilds every day."""
    if not (context.has_partition_key or context.has_partition_key_range):
        return {}
    window = context.partition_time_window
    last_day = window.end - timedelta(days=1)
    return {"min_date": f"{window.start:%Y-%m-%d}", "max_date": f"{last_day:%Y-%m-%d}"}


def dbt_build(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    # profiles.yml reads its target and connection from the environment; the dbt process inherits it.
    os.environ.update(warehouse.dbt_env())
    args = ["build"]
    if window := partition_vars(context):
        args += ["--vars", json.dumps(window)]
    yield from dbt.cli(args, context=context).stream()


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, dagster_dbt_translator=WarehouseTranslator(),
            exclude=MONITORING, partitions_def=daily, backfill_policy=dg.BackfillPolicy.single_run())
def training_marts(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """Staging and the training tables, one day partition (or a backfill range) per build."""
    yield from dbt_build(context, dbt, warehouse)


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, dagster_dbt_translator=WarehouseTranslator(),
            select=MONITORING, name="monitoring_views")
def monitoring_views(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """Coverage and vendor status over time: views over every day, so not partitioned."""
    yield from dbt_build(context, dbt, warehouse)


# The mart the dataset layer reads (dbt's custom schema is used as-is: see macros/generate_schema_name).
TRAINING_TABLE = "marts.training_table_1h"
