"""The serving app on a real uvicorn server: health, predictions equal to the in-process predictor,
FastAPI-shaped 422s, the champion pointer followed on promotion and demotion, the warehouse's latest
bar, LSTM windows, and the MLflow alias followed when a person moves it (LLM champions: test_llm_eval.py).

Two tiny XGBoost versions and one tiny LSTM are trained once per module through `runtime.execute`
(no MLflow), so the file costs mostly the torch and xgboost imports.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn

from btc_platform.serving.app import create_app
from btc_platform.training.champions import write_champion
from btc_platform.training.predictors import load_predictor

FEATURES = ["rsi_14", "ret_1h", "vol_24h", "macd"]
TARGET = "target_return_1h"
TABLE = "marts.training_table_1h"
LENGTH = 6  # the tiny LSTM's window
LOG = logging.getLogger("test_serving")


def write_splits(folder: Path, seed: int) -> Path:
    """splits.npz (y = 0.01 * rsi_14 + noise) + manifest, as the XGBoost trainer reads them."""
    rng = np.random.default_rng(seed)
    arrays = {"feature_names": np.array(FEATURES)}
    for split, n in (("train", 200), ("validation", 50), ("test", 50)):
        X = rng.normal(size=(n, len(FEATURES))).astype(np.float32)
        arrays |= {f"X_{split}": X, f"y_{split}": (0.01 * X[:, 0] + rng.normal(0, 0.002, n)).astype(np.float32)}
    folder.mkdir(parents=True)
    np.savez(folder / "splits.npz", **arrays)
    (folder / "manifest.json").write_text(json.dumps({"version": f"ds-{seed}"}))
    return folder


def write_sequences(folder: Path) -> Path:
    """sequences.npz (windows of LENGTH bars) + manifest + the train-only scaler.json the predictor reads."""
    from btc_platform.datasets.scaling import fit_scaler

    rng = np.random.default_rng(7)
    arrays = {"feature_names": np.array(FEATURES), "label_classes": np.array(["sell", "hold", "buy"])}
    for split, n in (("train", 64), ("validation", 16), ("test", 16)):
        X = rng.normal(size=(n, LENGTH, len(FEATURES))).astype(np.float32)
        y = (0.01 * X[:, -1, 0]).astype(np.float32)
        arrays |= {f"X_{split}": X, f"y_{split}": y,
                   f"label_{split}": np.where(y > 0.005, 2, np.where(y < -0.005, 0, 1)).astype(np.int64)}
    folder.mkdir(parents=True)
    np.savez(folder / "sequences.npz", **arrays)
    scaler = fit_scaler(arrays["X_train"].reshape(-1, len(FEATURES)), FEATURES)
    (folder / "scaler.json").write_text(json.dumps(scaler.to_json()))
    (folder / "manifest.json").write_text(json.dumps({"version": "seq-1"}))
    return folder


def train(kind: str, dataset: Path, model_url: str, params: dict) -> str:
    from btc_platform.training import runtime

    if kind == "xgboost":
        from btc_platform.training import xgboost_baseline as trainer
    else:
        from btc_platform.training import lstm as trainer
    request = runtime.TrainRequest(model=trainer.NAME, dataset_url=str(dataset), model_url=model_url, params=params)
    return runtime.execute(request, trainer.train, trainer.DEFAULT_PARAMS, LOG, track=False)["model_path"]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("serving")
    xgb = {"n_estimators": 20, "learning_rate": 0.3, "device": "cpu"}
    return {
        "xgb1": train("xgboost", write_splits(root / "ds1", 1), str(root / "versions" / "xgb1"), xgb),
        "xgb2": train("xgboost", write_splits(root / "ds2", 2), str(root / "versions" / "xgb2"), xgb),
        "lstm": train("lstm", write_sequences(root / "seq"), str(root / "versions" / "lstm"),
                      {"hidden_size": 8, "max_epochs": 2, "batch_size": 32, "device": "cpu"}),
    }


def promote(models_root: Path, model_url: str, version: int = 1, promoted_at: str = "2024-06-01T00:00:00+00:00"):
    card = json.loads((Path(model_url) / "model_card.json").read_text())
    write_champion(str(models_root), TARGET, {"model": card["model"], "model_url": model_url,
                                              "dataset_version": card["dataset_version"],
                                              "registered_version": version, "promoted_at": promoted_at})


@contextlib.contextmanager
def serve(models_root: Path, **kwargs):
    """The app on a real uvicorn server (a free port, a background thread); yields an httpx client."""
    with serve_target(models_root, TARGET, **kwargs) as client:
        yield client


@contextlib.contextmanager
def serve_target(models_root: Path, target: str, **kwargs):
    app = create_app(str(models_root), target, **kwargs)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)


def rows(n: int, symbol: str = "BTC-USD", start: str = "2024-01-01", seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"symbol": symbol, "ts": (pd.Timestamp(start, tz="UTC") + pd.Timedelta(hours=h)).isoformat(),
             "features": {f: float(v) for f, v in zip(FEATURES, rng.normal(size=len(FEATURES)))}}
            for h in range(n)]


def as_frame(body_rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame([r["features"] for r in body_rows], columns=FEATURES, dtype=float)
    frame.insert(0, "symbol", [r["symbol"] for r in body_rows])
    frame.insert(1, "ts", pd.to_datetime([r["ts"] for r in body_rows], utc=True))
    return frame


def test_health_and_predictions_match_the_predictor(models, tmp_path):
    promote(tmp_path, models["xgb1"], version=3)
    body = rows(5)
    body[2]["features"]["macd"] = None  # null means missing, as NaN in training
    with serve(tmp_path) as client:
        health = client.get("/health")
        assert health.status_code == 200, health.text
        h = health.json()
        assert h["status"] == "ok" and h["model"] == "xgboost_baseline_1h" and h["kind"] == "xgboost"
        assert h["model_url"] == models["xgb1"] and h["registered_version"] == 3 and h["dataset_version"] == "ds-1"
        assert h["features"] == len(FEATURES) and h["loaded_at"] and h["last_reload_error"] is None
        response = client.post("/predict", json={"rows": body})
    assert response.status_code == 200, response.text
    out = response.json()
    assert (out["model"], out["registered_version"], out["dataset_version"]) == ("xgboost_baseline_1h", 3, "ds-1")
    expected = load_predictor(models["xgb1"]).predict(as_frame(body))["pred_return"].to_numpy()
    assert [p["ts"] for p in out["predictions"]] == [f"2024-01-01T0{h}:00:00Z" for h in range(5)]
    assert np.allclose([p["pred_return"] for p in out["predictions"]], expected, rtol=1e-6, atol=1e-9)
    for p in out["predictions"]:
        assert p["symbol"] == "BTC-USD" and p["probs"] is None
        assert p["direction"] == ("flat" if abs(p["pred_return"]) < 1e-4 else "up" if p["pred_return"] > 0 else "down")


def test_bad_rows_get_fastapi_shaped_422s(models, tmp_path):
    promote(tmp_path, models["xgb1"])
    missing, text, empty = rows(2), rows(1), {"rows": []}
    del missing[1]["features"]["rsi_14"]
    text[0]["features"]["vol_24h"] = "high"
    with serve(tmp_path) as client:
        r_missing = client.post("/predict", json={"rows": missing})
        r_text = client.post("/predict", json={"rows": text})
        r_empty = client.post("/predict", json=empty)
    assert r_missing.status_code == 422
    (error,) = r_missing.json()["detail"]
    assert error["loc"] == ["body", "rows", 1, "features", "rsi_14"] and error["type"] == "missing"
    assert r_text.status_code == 422
    (error,) = r_text.json()["detail"]
    assert error["loc"] == ["body", "rows", 0, "features", "vol_24h"] and error["type"] == "float_type"
    assert r_empty.status_code == 422


def test_without_a_champion_every_endpoint_answers_503(tmp_path):
    with serve(tmp_path, warehouse_path=str(tmp_path / "none.duckdb")) as client:
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "no_champion"
        assert client.post("/predict", json={"rows": rows(1)}).status_code == 503
        assert client.get("/predict/latest", params={"symbol": "BTC-USD"}).status_code == 503


def wait_for(client: httpx.Client, check, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        health = client.get("/health").json()
        if check(health) or time.monotonic() > deadline:
            return health
        time.sleep(0.05)


def test_follows_the_pointer(models, tmp_path):
    promote(tmp_path, models["xgb1"], version=1)
    with serve(tmp_path, reload_seconds=0.2) as client:
        assert client.get("/health").json()["model_url"] == models["xgb1"]
        moved = time.monotonic()
        promote(tmp_path, models["xgb2"], version=2, promoted_at="2024-06-02T00:00:00+00:00")
        health = wait_for(client, lambda h: h["model_url"] == models["xgb2"])
        assert health["model_url"] == models["xgb2"] and health["registered_version"] == 2
        assert health["dataset_version"] == "ds-2" and time.monotonic() - moved < 10
        out = client.post("/predict", json={"rows": rows(1)}).json()
        assert out["registered_version"] == 2 and out["dataset_version"] == "ds-2"
        # A version that fails to load keeps the old model serving, and says why.
        write_champion(str(tmp_path), TARGET, {"model": "xgboost_baseline_1h", "model_url": str(tmp_path / "missing"),
                                               "promoted_at": "2024-06-03T00:00:00+00:00", "registered_version": 3})
        health = wait_for(client, lambda h: h["last_reload_error"])
        assert "model_card.json not found" in health["last_reload_error"]
        assert health["status"] == "ok" and health["model_url"] == models["xgb2"]
        # A demotion leaves no champion: 503.
        write_champion(str(tmp_path), TARGET, None)
        health = wait_for(client, lambda h: h["status"] == "no_champion")
        assert health["status"] == "no_champion"
        assert client.post("/predict", json={"rows": rows(1)}).status_code == 503


@pytest.fixture
def warehouse(tmp_path) -> tuple[Path, pd.DataFrame]:
    """A DuckDB file with 30 hourly BTC-USD rows ending at the last full hour, ETH-USD 3 days older."""
    import duckdb

    newest = pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(hours=1)
    frames = []
    for symbol, end in (("BTC-USD", newest), ("ETH-USD", newest - pd.Timedelta(days=3))):
        frame = as_frame(rows(30, symbol, start=str(end - pd.Timedelta(hours=29)), seed=len(frames)))
        frames.append(frame.assign(decision_at=frame["ts"] + pd.Timedelta(hours=1), target_return_1h=0.0))
    table = pd.concat(frames, ignore_index=True).sample(frac=1, random_state=0)  # stored in no order
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA marts")
        con.register("incoming", table)
        con.execute(f"CREATE TABLE {TABLE} AS SELECT * FROM incoming")
    return path, table


def test_latest_reads_the_newest_bar(models, tmp_path, warehouse):
    path, table = warehouse
    promote(tmp_path, models["xgb1"])
    with serve(tmp_path, warehouse_path=str(path)) as client:
        began = pd.Timestamp.now(tz="UTC")
        response = client.get("/predict/latest", params={"symbol": "BTC-USD"})
        unknown = client.get("/predict/latest", params={"symbol": "DOGE-USD"})
    assert response.status_code == 200, response.text
    out = response.json()
    btc = table[table.symbol == "BTC-USD"].sort_values("ts")
    assert pd.Timestamp(out["ts"]) == btc["ts"].iloc[-1] and out["symbol"] == "BTC-USD"
    close = btc["ts"].iloc[-1] + pd.Timedelta(hours=1)
    assert abs(out["age_seconds"] - (began - close).total_seconds()) < 30
    expected = load_predictor(models["xgb1"]).predict(btc.tail(1))["pred_return"].iloc[0]
    assert out["pred_return"] == pytest.approx(expected, rel=1e-6) and out["model"] == "xgboost_baseline_1h"
    assert unknown.status_code == 404 and "DOGE-USD" in unknown.json()["detail"]


def test_lstm_needs_its_window(models, tmp_path, warehouse):
    promote(tmp_path, models["lstm"])
    body = rows(LENGTH + 2) + rows(LENGTH, "ETH-USD", seed=1)
    gap = rows(LENGTH)
    gap[2]["ts"] = "2023-12-31T00:00:00Z"  # the newest row's run is broken by it
    with serve(tmp_path, warehouse_path=str(warehouse[0])) as client:
        assert client.get("/health").json()["kind"] == "lstm"
        short = client.post("/predict", json={"rows": rows(3)})
        broken = client.post("/predict", json={"rows": gap})
        response = client.post("/predict", json={"rows": body})
        latest = client.get("/predict/latest", params={"symbol": "ETH-USD"})
    assert short.status_code == 422
    (error,) = short.json()["detail"]
    assert f"needs {LENGTH} consecutive rows" in error["msg"] and "BTC-USD has 3" in error["msg"]
    assert error["loc"] == ["body", "rows"]
    assert broken.status_code == 422 and f"BTC-USD has {LENGTH - 3}" in broken.json()["detail"][0]["msg"]
    assert response.status_code == 200, response.text
    btc, eth = response.json()["predictions"]  # one per symbol: its newest row
    assert (btc["symbol"], btc["ts"]) == ("BTC-USD", body[LENGTH + 1]["ts"].replace("+00:00", "Z"))
    assert eth["symbol"] == "ETH-USD"
    expected = load_predictor(models["lstm"]).predict(as_frame(body))
    assert btc["pred_return"] == pytest.approx(expected["pred_return"].iloc[LENGTH + 1], rel=1e-5, abs=1e-9)
    assert eth["pred_return"] == pytest.approx(expected["pred_return"].iloc[-1], rel=1e-5, abs=1e-9)
    assert set(btc["probs"]) == {"sell", "hold", "buy"} and sum(btc["probs"].values()) == pytest.approx(1, abs=1e-5)
    assert btc["probs"]["buy"] == pytest.approx(expected["prob_buy"].iloc[LENGTH + 1], rel=1e-5, abs=1e-9)
    assert latest.status_code == 200, latest.text
    assert latest.json()["age_seconds"] > 3 * 86400 and set(latest.json()["probs"]) == {"sell", "hold", "buy"}


def test_the_server_follows_the_mlflow_alias_when_a_person_moves_it(models, tmp_path):
    """The pointer names xgb1; moving the registry alias `champion` to the version registered for xgb2
    (its `model_url` tag) makes the server load xgb2, and moving it back returns to xgb1."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    client.create_registered_model("xgboost_baseline_1h")
    v1, v2 = (client.create_model_version("xgboost_baseline_1h", source=models[k], tags={"model_url": models[k]})
              for k in ("xgb1", "xgb2"))
    client.set_registered_model_alias("xgboost_baseline_1h", "champion", v1.version)
    promote(tmp_path, models["xgb1"], version=int(v1.version))
    with serve(tmp_path, reload_seconds=0.2, tracking_uri=uri) as http:
        first = http.get("/health").json()
        assert first["model_url"] == models["xgb1"] and first["source"] == "pointer"
        client.set_registered_model_alias("xgboost_baseline_1h", "champion", v2.version)
        health = wait_for(http, lambda h: h["model_url"] == models["xgb2"])
        assert health["source"] == "mlflow_alias" and health["registered_version"] == int(v2.version)
        assert http.post("/predict", json={"rows": rows(1)}).json()["dataset_version"] == "ds-2"
        client.set_registered_model_alias("xgboost_baseline_1h", "champion", v1.version)
        assert wait_for(http, lambda h: h["model_url"] == models["xgb1"])["source"] == "pointer"
