"""Train every model that reads a dataset once per new version whose blocking checks passed.

splits -> XGBoost and LSTM; instructions -> SFT; preferences -> DPO and GRPO/DAPO. One sensor watches
every dataset; its cursor holds the last materialization seen per dataset. A (model, dataset version,
config) is launched at most once: the run key says so to Dagster, and a version already trained (a
run in flight or done, or a published model folder) is skipped when the same data is rebuilt.
"""


import json

import dagster as dg

from btc_platform.defs.datasets.assets import DATASET_ASSETS
from btc_platform.defs.training.assets import MODEL_ASSETS, MODELS, ModelSpec, TrainingConfig, run_identity

DATASETS = sorted({m.dataset for m in MODELS})
_DATASET_DEFS = {a.key.to_user_string(): a for a in DATASET_ASSETS}
# Every blocking check a dataset declares must have passed in the run that built the version.
BLOCKING_CHECKS = {d: tuple(s.name for s in _DATASET_DEFS[d].check_specs if s.blocking) for d in DATASETS}
ACTIVE = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.QUEUED,
          dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING]


def checks_passed(instance: dg.DagsterInstance, dataset: str, run_id: str) -> bool:
    """Every blocking check of the dataset was evaluated in the materializing run and passed."""
    for name in BLOCKING_CHECKS[dataset]:
        record = instance.get_latest_asset_check_evaluation_record(dg.AssetCheckKey(dg.AssetKey(dataset), name))
        if record is None or record.run_id != run_id or not (record.evaluation and record.evaluation.passed):
            return False
    return True


def run_tags(spec: ModelSpec, version: str, cfg_hash: str) -> dict[str, str]:
    return {"model": spec.name, "dataset_version": version, "config_hash": cfg_hash}


def already_trained(instance: dg.DagsterInstance, tags: dict[str, str]) -> bool:
    return bool(instance.get_run_records(filters=dg.RunsFilter(tags=tags, statuses=ACTIVE), limit=1))


def requests_for(instance: dg.DagsterInstance, dataset: str, record) -> tuple[list[dg.RunRequest], list[str]]:
    """Run requests for every model of `dataset` on this materialization, and why others were skipped."""
    version = record.asset_materialization.metadata["version"].value
    if not checks_passed(instance, dataset, record.run_id):
        return [], [f"{dataset} version {version}: blocking checks did not pass"]
    requests, skipped = [], []
    for spec in (m for m in MODELS if m.dataset == dataset):
        config = TrainingConfig(dataset_version=version)
        cfg_hash = run_identity(spec, config)
        tags = run_tags(spec, version, cfg_hash)
        if already_trained(instance, tags):
            skipped.append(f"{spec.name} on {dataset} version {version}: already trained (same data and config)")
            continue
        requests.append(dg.RunRequest(
            run_key=f"{spec.name}:{version}:{cfg_hash}",
            asset_selection=[dg.AssetKey(spec.name)],
            run_config=dg.RunConfig(ops={spec.name: config}),
            tags=tags,
        ))
    return requests, skipped


@dg.sensor(
    target=MODEL_ASSETS,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Trains each model once per new version of its dataset whose blocking checks passed: "
    "training_splits_1h -> xgboost_baseline_1h, lstm_1h; llm_instructions_1h -> sft_lora_1h; "
    "llm_preferences_1h -> dpo_lora_1h, grpo_dapo_1h.",
)
def train_on_new_dataset(context: dg.SensorEvaluationContext):
    cursor = json.loads(context.cursor) if context.cursor else {}
    requests, reasons = [], []
    for dataset in DATASETS:
        latest = context.instance.fetch_materializations(dg.AssetKey(dataset), limit=1).records
        if not latest:
            reasons.append(f"{dataset} has never been materialized")
            continue
        record = latest[0]
        if cursor.get(dataset, -1) >= record.storage_id:
            reasons.append(f"{dataset}: no new dataset materialization since the last tick")
            continue
        cursor[dataset] = record.storage_id
        made, skipped = requests_for(context.instance, dataset, record)
        requests += made
        reasons += skipped
    context.update_cursor(json.dumps(cursor, sort_keys=True))
    if requests:
        return dg.SensorResult(run_requests=requests)
    return dg.SkipReason("; ".join(reasons))
