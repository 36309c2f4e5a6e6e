"""Model training as external processes through Dagster Pipes; metrics come back as metadata."""


import sys
from pathlib import Path

import dagster as dg

from btc_platform.defs.datasets.assets import SPLITS, latest_version, training_splits_1h, version_dir
from btc_platform.defs.resources import ArtifactsResource


class TrainingConfig(dg.Config):
    # Set by the training sensor to the dataset version that triggered it; empty means the latest.
    dataset_version: str = ""


@dg.asset(
    group_name="training",
    deps=[training_splits_1h],
    kinds={"xgboost", "python"},
    description="XGBoost baseline on the 1h forward return, trained in a separate process (Dagster Pipes); "
    "reports test RMSE and directional accuracy against a zero-return baseline.",
)
def xgboost_baseline_1h(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    artifacts: ArtifactsResource,
    pipes_subprocess_client: dg.PipesSubprocessClient,
):
    version = config.dataset_version or latest_version(context)
    dataset_dir = version_dir(artifacts.datasets_dir, SPLITS, version)
    if not (dataset_dir / "splits.npz").exists():
        raise dg.Failure(f"dataset {SPLITS} version {version} has no splits.npz at {dataset_dir}")
    model_dir = Path(artifacts.models_dir).resolve() / "xgboost_baseline_1h" / f"dataset={version}"
    context.log.info(f"training on {dataset_dir}, model to {model_dir}")
    return pipes_subprocess_client.run(
        command=[sys.executable, "-m", "btc_platform.training.xgboost_baseline"],
        context=context,
        extras={"dataset_dir": str(dataset_dir), "model_dir": str(model_dir), "dataset_version": version},
    ).get_materialize_result()
