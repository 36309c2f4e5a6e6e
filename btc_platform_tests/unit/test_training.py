"""XGBoost baseline entry point: standalone subprocess and through Dagster Pipes."""

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import xgboost as xgb

REPO = Path(__file__).resolve().parents[2]
MODULE = "btc_platform.training.xgboost_baseline"
N_FEATURES = 15
FAST = {"n_estimators": 150, "learning_rate": 0.1}


def write_npz(path: Path, sizes=(1200, 300, 300), seed: int = 0) -> Path:
    """A learnable target: y = 0.01 * x0 + small noise."""
    rng = np.random.default_rng(seed)
    arrays = {"feature_names": np.array([f"f{i}" for i in range(N_FEATURES)])}
    start = 0
    for name, n in zip(("train", "validation", "test"), sizes):
        X = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
        y = (0.01 * X[:, 0] + rng.normal(0, 0.002, n)).astype(np.float32)
        ts = (np.arange(start, start + n, dtype=np.int64) * 3_600_000_000_000)
        arrays.update({f"X_{name}": X, f"y_{name}": y, f"ts_{name}": ts,
                       f"symbol_{name}": np.array(["BTC-USD"] * n)})
        start += n + 24
    path.mkdir(parents=True, exist_ok=True)
    np.savez(path / "splits.npz", **arrays)
    (path / "manifest.json").write_text(json.dumps({"version": "test"}))  # a published version has one
    return path


@pytest.fixture(autouse=True)
def tmp_mlflow(tmp_path, monkeypatch):
    """Whatever runs MLflow here (a trainer subprocess inherits the environment) keeps out of ./data."""
    monkeypatch.setenv("BTC_PLATFORM_MLFLOW_DIR", str(tmp_path / "mlflow"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")


def run_standalone(dataset_dir: Path, model_dir: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", MODULE, "--dataset-dir", str(dataset_dir),
           "--model-dir", str(model_dir), "--params", json.dumps(FAST), "--no-mlflow"]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_standalone_beats_zero_baseline(tmp_path):
    data, model_dir = write_npz(tmp_path / "ds"), tmp_path / "model"
    proc = run_standalone(data, model_dir)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((model_dir / "metrics.json").read_text())
    figures = json.loads(proc.stdout.strip().splitlines()[-1])  # the CLI prints what Pipes would report
    assert figures["rmse"] == pytest.approx(metrics["rmse"]) and figures["model_path"] == str(model_dir)
    card = json.loads((model_dir / "model_card.json").read_text())
    assert card["dataset_version"] == "test" and card["metrics"]["rmse"] == pytest.approx(metrics["rmse"])
    assert card["hyperparameters"]["n_estimators"] == FAST["n_estimators"]
    assert metrics["rmse"] < metrics["zero_rmse"]
    assert metrics["rmse_vs_zero"] < 0.5
    assert metrics["directional_accuracy"] > 0.8
    assert 0.3 < metrics["zero_directional_accuracy"] < 0.7
    assert (metrics["n_train"], metrics["n_val"], metrics["n_test"]) == (1200, 300, 300)
    assert metrics["device"] in ("cpu", "cuda")
    assert 0 <= metrics["best_iteration"] < FAST["n_estimators"]
    booster = xgb.Booster(model_file=str(model_dir / "model.json"))
    assert booster.num_boosted_rounds() == metrics["best_iteration"] + 1
    with np.load(data / "splits.npz") as npz:
        pred = booster.predict(xgb.DMatrix(npz["X_test"], feature_names=booster.feature_names))
        rmse = float(np.sqrt(np.mean((pred - npz["y_test"]) ** 2)))
    assert rmse == pytest.approx(metrics["rmse"], rel=1e-5)


def test_missing_dataset_exits_nonzero(tmp_path):
    proc = run_standalone(tmp_path / "nowhere", tmp_path / "model")
    assert proc.returncode == 2
    assert "dataset not found" in proc.stderr and "manifest.json" in proc.stderr
    assert not (tmp_path / "model").exists()


def test_missing_splits_file_exits_nonzero(tmp_path):
    data = tmp_path / "ds"
    data.mkdir()
    (data / "manifest.json").write_text(json.dumps({"version": "test"}))
    proc = run_standalone(data, tmp_path / "model")
    assert proc.returncode == 2
    assert "dataset file not found" in proc.stderr and "splits.npz" in proc.stderr
    assert not (tmp_path / "model").exists()


def test_too_few_rows_exits_nonzero(tmp_path):
    data = write_npz(tmp_path / "ds", sizes=(20, 5, 5))
    proc = run_standalone(data, tmp_path / "model")
    assert proc.returncode == 2
    assert "too few rows" in proc.stderr
    assert not (tmp_path / "model").exists()


def test_through_dagster_pipes(tmp_path):
    data, model_dir = write_npz(tmp_path / "ds"), tmp_path / "model"

    @dg.asset
    def xgboost_baseline_model(
        context: dg.AssetExecutionContext, pipes_subprocess_client: dg.PipesSubprocessClient
    ):
        return pipes_subprocess_client.run(
            command=[sys.executable, "-m", MODULE],
            context=context,
            extras={"dataset_dir": str(data), "model_dir": str(model_dir), "params": FAST, "no_mlflow": True},
            cwd=str(REPO),
        ).get_materialize_result()

    result = dg.materialize(
        [xgboost_baseline_model],
        resources={"pipes_subprocess_client": dg.PipesSubprocessClient()},
    )
    assert result.success
    (mat,) = result.asset_materializations_for_node("xgboost_baseline_model")
    md = {k: v.value for k, v in mat.metadata.items()}
    saved = json.loads((model_dir / "metrics.json").read_text())
    for key in ("rmse", "mae", "directional_accuracy", "zero_rmse", "zero_directional_accuracy",
                "rmse_vs_zero"):
        assert isinstance(md[key], float)
        assert md[key] == pytest.approx(saved[key])
    assert md["rmse"] < md["zero_rmse"]
    assert md["n_test"] == 300 and md["best_iteration"] == saved["best_iteration"]
    assert md["model_path"] == str(model_dir)
    assert (model_dir / "model.json").is_file() and (model_dir / "model_card.json").is_file()
    assert md["device"] in ("cpu", "cuda") and md["dataset_version"] == "test"
