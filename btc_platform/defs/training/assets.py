"""One asset per trained model. Each runs its trainer (`btc_platform/training/<module>.py`) as a separate
process through Dagster Pipes, on the launcher resource (a local process, or a GPU pod), and gets the
trainer's metrics back as metadata. Steps share the `gpu` pool, which caps how many train at once.

A model version lives at `<models>/<model>/dataset=<version>/config=<hash>` with its model card, and is
registered in MLflow under the asset's name.
"""


import os
from dataclasses import dataclass

import dagster as dg

from btc_platform.defs.resources import ArtifactsResource
from btc_platform.defs.training.launcher import TrainingLauncherResource
from btc_platform.training.runtime import TrainerError, config_hash, model_version_url, read_manifest

# The production base model for the LLM trainers; larger ones (or a local folder) by configuration.
DEFAULT_BASE_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
TRAINING_POOL = "gpu"


def default_base_model() -> str:
    return os.environ.get("BTC_PLATFORM_BASE_MODEL") or DEFAULT_BASE_MODEL


@dataclass(frozen=True)
class ModelSpec:
    name: str  # the asset, and the registered model's name
    module: str  # btc_platform.training.<module>
    dataset: str  # the dataset asset it trains on
    kinds: frozenset[str]
    description: str
    llm: bool = False


MODELS = [
    ModelSpec("xgboost_baseline_1h", "xgboost_baseline", "training_splits_1h", frozenset({"xgboost", "python"}),
              "XGBoost baseline on the 1h forward return (newest walk-forward fold of training_splits_1h), with early "
              "stopping on validation; test RMSE and directional accuracy against the zero-return forecast."),
    ModelSpec("lstm_1h", "lstm", "training_splits_1h", frozenset({"pytorch", "python"}),
              "LSTM on the scaled windows of training_splits_1h (`sequences.npz`): predicts the 1h return and the "
              "24h sell/hold/buy label, early stopping on validation, mixed precision on GPU."),
    ModelSpec("sft_lora_1h", "sft_lora", "llm_instructions_1h", frozenset({"pytorch", "huggingface"}),
              "LoRA adapter fine-tuned with TRL's SFTTrainer on the instruction data (conversational prompt/completion) "
              "of llm_instructions_1h, on the configured base model.", llm=True),
    ModelSpec("dpo_lora_1h", "dpo_lora", "llm_preferences_1h", frozenset({"pytorch", "huggingface"}),
              "LoRA adapter trained with TRL's DPOTrainer on the DPO rows (prompt/chosen/rejected) of "
              "llm_preferences_1h.", llm=True),
    ModelSpec("grpo_dapo_1h", "grpo_dapo", "llm_preferences_1h", frozenset({"pytorch", "huggingface"}),
              "LoRA adapter trained with TRL's GRPOTrainer configured as DAPO (clip-higher, token-level loss, no KL, "
              "overlong completions masked, dynamic sampling) on the GRPO prompts of llm_preferences_1h; the reward "
              "is the realized score of the action the completion names.", llm=True),
]


class TrainingConfig(dg.Config):
    # Set by the training sensor to the dataset version that triggered it; empty means the latest.
    dataset_version: str = ""
    # Overrides of the trainer's hyperparameters (its module's DEFAULT_PARAMS).
    params: dict = {}
    # LLM trainers: a hub id or a local folder; empty means BTC_PLATFORM_BASE_MODEL or the default.
    base_model: str = ""


def resolved_base_model(spec: ModelSpec, config: TrainingConfig) -> str | None:
    return (config.base_model or default_base_model()) if spec.llm else None


def run_identity(spec: ModelSpec, config: TrainingConfig) -> str:
    """The config hash that names a model version, the same one the sensor computes before launching."""
    return config_hash(dict(config.params), resolved_base_model(spec, config))


def dataset_materialization(instance: dg.DagsterInstance, dataset: str, version: str | None = None):
    """The dataset's materialization of `version` (its latest one when None)."""
    records = instance.fetch_materializations(dg.AssetKey(dataset), limit=100).records
    for record in records:
        if version is None or record.asset_materialization.metadata["version"].value == version:
            return record
    if version is None:
        raise dg.Failure(f"{dataset} has never been materialized: build it first")
    raise dg.Failure(f"{dataset} has no materialization of version {version}")


def model_asset(spec: ModelSpec) -> dg.AssetsDefinition:
    @dg.asset(name=spec.name, group_name="training", deps=[spec.dataset], kinds=set(spec.kinds), pool=TRAINING_POOL,
              description=spec.description)
    def _train(context: dg.AssetExecutionContext, config: TrainingConfig, artifacts: ArtifactsResource,
               training_launcher: TrainingLauncherResource) -> dg.MaterializeResult:
        record = dataset_materialization(context.instance, spec.dataset, config.dataset_version or None)
        metadata = record.asset_materialization.metadata
        version, dataset_url = metadata["version"].value, metadata["path"].value
        try:
            read_manifest(dataset_url)  # only a published (complete) version is trained on
        except TrainerError as exc:
            raise dg.Failure(f"{spec.dataset} version {version}: {exc}") from exc
        base_model = resolved_base_model(spec, config)
        cfg_hash = run_identity(spec, config)
        model_url = model_version_url(artifacts.models_dir, spec.name, version, cfg_hash)
        context.log.info(f"training {spec.name} on {dataset_url} (config {cfg_hash}), model to {model_url}")
        extras = {"model": spec.name, "dataset_dir": dataset_url, "dataset_version": version,
                  "model_dir": model_url, "params": dict(config.params), "config_hash": cfg_hash,
                  **({"base_model": base_model} if base_model else {})}
        return training_launcher.run(context, spec.module, extras)

    return _train


MODEL_ASSETS = [model_asset(spec) for spec in MODELS]
