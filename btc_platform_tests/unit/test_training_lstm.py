"""LSTM trainer: learns an AR(1) series, reports through Dagster Pipes and MLflow, refuses bad datasets.

One trained model (module scope, through Pipes) serves the quality, metadata, card and MLflow tests;
the refusals run in-process through `main` except one real subprocess, since each interpreter pays
seconds of torch and MLflow imports.
"""

import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

REPO = Path(__file__).resolve().parents[2]
MODULE = "btc_platform.training.lstm"
LENGTH = 12
FAST = {"hidden_size": 32, "max_epochs": 25, "patience": 4, "batch_size": 128, "lr": 5e-3}
VERSION = "ar1-test"


def write_sequences(folder: Path, sizes=(1500, 300, 300), seed: int = 0) -> Path:
    """sequences.npz + manifest.json: windows of x_t = 0.8 x_{t-1} + noise (and a pure-noise feature)
    predicting the next value; labels sell/hold/buy by the next value's sign beyond +-0.45 sd."""
    rng = np.random.default_rng(seed)
    n = sum(sizes) + LENGTH
    x = np.zeros(n)
    for t in range(1, n):
        x[t] = 0.8 * x[t - 1] + rng.normal()
    x /= x.std()
    windows = sliding_window_view(x[:-1], LENGTH)  # windows[i] = x[i : i+T], target x[i+T]
    X = np.stack([windows, rng.normal(size=windows.shape)], axis=-1).astype(np.float32)
    X[rng.random(X.shape) < 0.01] = np.nan  # sparse missing values, read as 0
    y = (0.01 * x[LENGTH:]).astype(np.float32)  # a return-like scale; the trainer rescales
    label = np.where(y > 0.0045, 2, np.where(y < -0.0045, 0, 1)).astype(np.int64)
    label[rng.random(len(label)) < 0.05] = -1  # unknown labels are ignored
    arrays = {"feature_names": np.array(["x", "noise"]), "length": np.array(LENGTH),
              "target_name": np.array("target_return_1h"), "label_name": np.array("target_label_24h"),
              "label_classes": np.array(["sell", "hold", "buy"])}
    start = 0
    for split, size in zip(("train", "validation", "test"), sizes):
        part = slice(start, start + size)
        arrays |= {f"X_{split}": X[part], f"y_{split}": y[part], f"label_{split}": label[part],
                   f"end_ts_{split}": np.arange(start, start + size, dtype=np.int64) * 3_600_000_000_000,
                   f"symbol_{split}": np.array(["BTC-USD"] * size)}
        start += size
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "sequences.npz", **arrays)
    (folder / "manifest.json").write_text(json.dumps({"version": VERSION, "files": ["sequences.npz"]}))
    return folder


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_sequences(tmp_path_factory.mktemp("lstm") / "ds")


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory) -> dict:
    """One model trained by a Dagster asset through Pipes, registered in a throwaway MLflow."""
    root = tmp_path_factory.mktemp("lstm-run")
    model_dir, uri = root / "models" / "lstm_1h", f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    (root / "mlflow").mkdir()

    @dg.asset
    def lstm_1h(context: dg.AssetExecutionContext):
        return dg.PipesSubprocessClient().run(
            command=[sys.executable, "-m", MODULE], context=context, cwd=str(REPO),
            extras={"dataset_dir": str(dataset), "model_dir": str(model_dir), "params": FAST},
            # One torch thread: on a small shared CPU two threads that wait on each other run many times slower.
            env={"MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1"},
        ).get_materialize_result()

    result = dg.materialize([lstm_1h])
    assert result.success
    (mat,) = result.asset_materializations_for_node("lstm_1h")
    return {"metadata": {k: v.value for k, v in mat.metadata.items()}, "model_dir": model_dir, "uri": uri}


def test_lstm_beats_zero_forecast_on_ar1(trained, dataset):
    from btc_platform.training import lstm

    metrics = json.loads((trained["model_dir"] / "metrics.json").read_text())
    print({k: metrics[k] for k in ("rmse_vs_zero", "label_accuracy", "majority_accuracy", "val_rmse_vs_zero",
                                   "epochs_run", "best_epoch", "samples_per_s")})
    assert metrics["rmse"] < metrics["zero_rmse"] and metrics["rmse_vs_zero"] < 0.8  # the best is ~0.6
    assert metrics["label_accuracy"] > metrics["majority_accuracy"] + 0.1
    assert metrics["directional_accuracy"] > metrics["zero_directional_accuracy"]
    assert metrics["val_rmse_vs_zero"] < 0.8 and 0 <= metrics["label_macro_f1"] <= 1
    assert (metrics["n_train"], metrics["n_val"], metrics["n_test"]) == (1500, 300, 300)
    assert 1 <= metrics["best_epoch"] <= metrics["epochs_run"] <= FAST["max_epochs"]
    assert metrics["device"] in ("cpu", "cuda") and metrics["precision"] in ("fp32", "bf16", "fp16")
    assert metrics["samples_per_s"] > 0
    config = json.loads((trained["model_dir"] / "model_config.json").read_text())
    assert config["feature_names"] == ["x", "noise"] and config["label_classes"] == ["sell", "hold", "buy"]
    assert config["hidden_size"] == 32 and config["length"] == LENGTH and config["y_scale"] > 0
    # The saved model reproduces the reported figures.
    with np.load(dataset / "sequences.npz") as npz:
        X, y, label = npz["X_test"], npz["y_test"], npz["label_test"]
    returns, probs = lstm.predict(trained["model_dir"], X)
    assert returns.shape == (300,) and probs.shape == (300, 3)
    assert np.allclose(probs.sum(1), 1, atol=1e-5)
    exact = metrics["precision"] == "fp32"  # predict runs in float32 on the CPU; a GPU run used autocast
    assert float(np.sqrt(np.mean((returns - y) ** 2))) == pytest.approx(metrics["rmse"], rel=1e-4 if exact else 0.05)
    known = label >= 0
    assert float(np.mean(probs.argmax(1)[known] == label[known])) == pytest.approx(
        metrics["label_accuracy"], abs=1e-9 if exact else 0.05)


def test_metrics_card_and_mlflow_through_pipes(trained):
    md, model_dir = trained["metadata"], trained["model_dir"]
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert md["rmse"] == pytest.approx(metrics["rmse"]) and isinstance(md["rmse"], float)
    assert md["device"] == metrics["device"] and md["precision"] == metrics["precision"]
    assert md["registered_version"] == 1 and md["model_path"] == str(model_dir)
    assert md["dataset_version"] == VERSION
    card = json.loads((model_dir / "model_card.json").read_text())
    manifest = (Path(card["dataset_url"]) / "manifest.json").read_text()
    assert card["dataset_version"] == VERSION
    assert card["dataset_manifest_sha256"] == hashlib.sha256(
        json.dumps(json.loads(manifest), sort_keys=True).encode()).hexdigest()
    assert card["hyperparameters"]["hidden_size"] == 32 and card["hyperparameters"]["label_weight"] == 0.5
    assert card["device"] == metrics["device"] and card["wall_time_s"] > 0
    assert card["metrics"]["rmse"] == pytest.approx(metrics["rmse"])
    assert card["code_version"] and {"model.pt", "model_config.json", "metrics.json"} <= set(card["files"])
    assert (model_dir / "README.md").is_file()

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=trained["uri"])
    version = client.get_model_version("lstm_1h", str(md["registered_version"]))
    run = client.get_run(version.run_id)
    assert run.info.run_id == md["mlflow_run_id"]
    assert run.data.metrics["rmse"] == pytest.approx(metrics["rmse"])
    assert run.data.metrics["label_accuracy"] == pytest.approx(metrics["label_accuracy"])
    assert run.data.tags["dataset_version"] == VERSION and run.data.tags["device"] == metrics["device"]


def test_cpu_training_is_reproducible(dataset, tmp_path):
    import torch

    from btc_platform.training import lstm, runtime

    params = {**FAST, "max_epochs": 2, "device": "cpu"}
    runs = []
    for k in range(2):
        work = tmp_path / f"run{k}"
        work.mkdir()
        request = runtime.TrainRequest(model="lstm_1h", dataset_url=str(dataset), model_url=str(tmp_path / "m"),
                                       params=params)
        metrics = lstm.train(request, {}, work, logging.getLogger("test"))
        runs.append((metrics, torch.load(work / "model.pt", weights_only=True)))
    (m0, s0), (m1, s1) = runs
    timings = ("samples_per_s", "train_time_s")
    assert {k: v for k, v in m0.items() if k not in timings} == {k: v for k, v in m1.items() if k not in timings}
    assert all(torch.equal(s0[k], s1[k]) for k in s0)


def registered_models(db: Path) -> list:
    if not db.exists():
        return []
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{db}").search_registered_models()


def empty_test_split(folder: Path) -> Path:
    write_sequences(folder, sizes=(200, 50, 0))
    return folder


def corrupt(folder: Path) -> Path:
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"version": "bad"}))
    (folder / "sequences.npz").write_bytes(b"this is not a zip archive\x00\x01" * 40)
    return folder


def truncated(folder: Path) -> Path:
    write_sequences(folder)
    raw = (folder / "sequences.npz").read_bytes()
    (folder / "sequences.npz").write_bytes(raw[: len(raw) // 2])
    return folder


def manifest_only(folder: Path) -> Path:
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"version": "bad"}))
    return folder


@pytest.mark.parametrize("make, message", [
    (manifest_only, "dataset file not found: {ds}/sequences.npz"),
    (corrupt, "corrupt dataset file {ds}/sequences.npz"),
    (truncated, "corrupt dataset file {ds}/sequences.npz"),
    (empty_test_split, "too few rows in {ds}/sequences.npz: {{'test': 0}}"),
])
def test_bad_dataset_is_refused(make, message, tmp_path, monkeypatch, capsys):
    from btc_platform.training import lstm

    db = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    ds = make(tmp_path / "ds")
    rc = lstm.main(["--dataset-dir", str(ds), "--model-dir", str(tmp_path / "model"), "--params", json.dumps(FAST)])
    assert rc == 2
    assert message.format(ds=ds) in capsys.readouterr().err
    assert not (tmp_path / "model").exists() and not registered_models(db)


def test_missing_dataset_exits_2(tmp_path):
    """A real process: the exit status and stderr a launcher sees, MLflow switched on."""
    db = tmp_path / "mlflow.db"
    cmd = [sys.executable, "-m", MODULE, "--dataset-dir", str(tmp_path / "nowhere"),
           "--model-dir", str(tmp_path / "model")]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{db}"})
    assert proc.returncode == 2, proc.stderr
    assert f"{tmp_path / 'nowhere'} has no manifest.json" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "model").exists() and not registered_models(db)
