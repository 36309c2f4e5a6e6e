"""Model training as external processes through Dagster Pipes; metrics come back as metadata."""


import sys
from pathlib import Path

import dagster as dg

from btc_platform.defs.datasets.assets import SPLITS, latest_version, store, training_splits_1h
from btc_platform.defs.resources import ArtifactsResource


class TrainingConfig(dg.Config):
    # Set by the training sensor to the dataset version that triggered it; empty means the latest.
    dataset_version: str = ""


@dg.asset(
    group_name="training",
    deps=[training_splits_1h],
    kinds={"xgboost", "python"},
    description="XGBoost baseline on the 1h forward return, trained in a separate process (Dagster Pipes) on the "
    "newest walk-forward fold of training_splits_1h; reports test RMSE and directional accuracy against a "
    "zero-return baseline.",
)
def xgboost_baseline_1h(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    artifacts: ArtifactsResource,
    pipes_subprocess_client: dg.PipesSubprocessClient,
):
    version = config.dataset_version or latest_version(context.instance, SPLITS)
    datasets = store(artifacts)
    try:
        datasets.manifest(SPLITS, version)  # only a published (complete) version is trained on
    except FileNotFoundError as exc:
        raise dg.Failure(str(exc)) from exc
    dataset_url = datasets.version_url(SPLITS, version)
    model_dir = Path(artifacts.models_dir).resolve() / "xgboost_baseline_1h" / f"dataset={version}"
    context.log.info(f"training on {dataset_url}, model to {model_dir}")
    return pipes_subprocess_client.run(
        command=[sys.executable, "-m", "btc_platform.training.xgboost_baseline"],
        context=context,
        extras={"dataset_dir": dataset_url, "model_dir": str(model_dir), "dataset_version": version},
    ).get_materialize_result()
