"""Train when a new dataset version has landed and its blocking checks passed, once per version."""


import dagster as dg

from btc_platform.defs.datasets.assets import SPLITS, training_splits_1h
from btc_platform.defs.training.assets import xgboost_baseline_1h

DATASET_KEY = dg.AssetKey(SPLITS)
# Every blocking check the dataset declares must have passed in the run that built the version.
BLOCKING_CHECKS = tuple(spec.name for spec in training_splits_1h.check_specs if spec.blocking)


def checks_passed(instance: dg.DagsterInstance, run_id: str) -> bool:
    """Every blocking check of the dataset was evaluated in the materializing run and passed."""
    for name in BLOCKING_CHECKS:
        record = instance.get_latest_asset_check_evaluation_record(dg.AssetCheckKey(DATASET_KEY, name))
        if record is None or record.run_id != run_id or not (record.evaluation and record.evaluation.passed):
            return False
    return True


def already_trained(instance: dg.DagsterInstance, version: str) -> bool:
    runs = instance.get_run_records(
        filters=dg.RunsFilter(tags={"dataset_version": version}, statuses=[
            dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.QUEUED,
            dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING]),
        limit=1,
    )
    return bool(runs)


@dg.sensor(
    target=[xgboost_baseline_1h],
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches xgboost_baseline_1h for each new training_splits_1h version whose checks passed.",
)
def train_on_new_dataset(context: dg.SensorEvaluationContext):
    latest = context.instance.fetch_materializations(DATASET_KEY, limit=1).records
    if not latest:
        return dg.SkipReason("training_splits_1h has never been materialized")
    record = latest[0]
    if context.cursor and int(context.cursor) >= record.storage_id:
        return dg.SkipReason("no new dataset materialization since the last tick")
    context.update_cursor(str(record.storage_id))
    version = record.asset_materialization.metadata["version"].value
    if not checks_passed(context.instance, record.run_id):
        return dg.SkipReason(f"dataset version {version}: blocking checks did not pass")
    if already_trained(context.instance, version):
        return dg.SkipReason(f"dataset version {version} was already trained on (same data rebuilt)")
    # The run key makes Dagster launch at most one training run per dataset version.
    return dg.RunRequest(
        run_key=f"xgboost_baseline_1h:{version}",
        run_config=dg.RunConfig(ops={"xgboost_baseline_1h": {"config": {"dataset_version": version}}}),
        tags={"dataset_version": version},
    )
