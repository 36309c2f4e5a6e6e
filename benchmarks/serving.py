"""Latency and throughput of `POST /predict` on a real uvicorn server, against the in-process predictor.

    .venv/bin/python benchmarks/serving.py            # 300 sequential requests per case
    .venv/bin/python benchmarks/serving.py --smoke    # 30, for CI
    .venv/bin/python benchmarks/serving.py --requests 1000 --features 64

A tiny XGBoost and a tiny LSTM are trained at the start (`runtime.execute`, no MLflow) into a temporary
models folder and promoted with the champion pointer; each is served by its own server process
(`python -m btc_platform.serving`, as deployed, so the client does not share the server's GIL). For each
model, two request sizes:

| case | request | predictions |
|---|---|---|
| single | 1 row (XGBoost); 1 symbol's window of `length` rows (LSTM) | 1 |
| batch | 64 rows (XGBoost); 64 symbols' windows (LSTM) | 64 |

sent N times one after another over one keep-alive httpx connection, the JSON body encoded once
beforehand. Baseline: `load_predictor(...).predict(frame)` on the same rows, N times, in a fresh process
of its own (like the server's: a process that has trained with torch keeps OpenMP threads that slow
XGBoost several times on a small machine).
Printed per case: p50/p99 latency and requests/s for HTTP and direct, and the HTTP/direct ratio (the
price of JSON, validation and the network stack). The last line is `BENCH_JSON {...}` with every figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable without installing it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
TARGET = "target_return_1h"
BATCH = 64


def train_models(root: Path, n_features: int, length: int) -> dict[str, str]:
    """One tiny XGBoost and one tiny LSTM version, published under `root/<kind>/`; their URLs."""
    from btc_platform.datasets.scaling import fit_scaler
    from btc_platform.training import lstm, runtime, xgboost_baseline

    rng = np.random.default_rng(0)
    names = [f"f{i:02d}" for i in range(n_features)]
    splits, seqs = root / "data" / "splits", root / "data" / "sequences"
    splits.mkdir(parents=True)
    seqs.mkdir(parents=True)
    arrays, windows = {"feature_names": np.array(names)}, {"feature_names": np.array(names)}
    for split, n in (("train", 2000), ("validation", 400), ("test", 400)):
        X = rng.normal(size=(n, n_features)).astype(np.float32)
        arrays |= {f"X_{split}": X, f"y_{split}": (0.01 * X[:, 0] + rng.normal(0, 0.002, n)).astype(np.float32)}
        W = rng.normal(size=(n // 10, length, n_features)).astype(np.float32)
        y = (0.01 * W[:, -1, 0]).astype(np.float32)
        windows |= {f"X_{split}": W, f"y_{split}": y,
                    f"label_{split}": np.where(y > 0.005, 2, np.where(y < -0.005, 0, 1)).astype(np.int64)}
    np.savez(splits / "splits.npz", **arrays)
    np.savez(seqs / "sequences.npz", **windows)
    (seqs / "scaler.json").write_text(json.dumps(fit_scaler(arrays["X_train"], names).to_json()))
    for folder in (splits, seqs):
        (folder / "manifest.json").write_text(json.dumps({"version": f"bench-{folder.name}"}))
    log = logging.getLogger("bench")
    urls = {}
    for kind, trainer, data, params in (
            ("xgboost", xgboost_baseline, splits, {"n_estimators": 100, "early_stopping_rounds": 100, "device": "cpu"}),
            ("lstm", lstm, seqs, {"max_epochs": 1, "device": "cpu"})):  # default width (64 hidden)
        request = runtime.TrainRequest(model=trainer.NAME, dataset_url=str(data),
                                       model_url=str(root / kind / "versions" / trainer.NAME), params=params)
        urls[kind] = runtime.execute(request, trainer.train, trainer.DEFAULT_PARAMS, log, track=False)["model_path"]
    return urls


def promote(models_root: Path, url: str) -> None:
    from btc_platform.training.champions import now, write_champion

    card = json.loads((Path(url) / "model_card.json").read_text())
    write_champion(str(models_root), TARGET, {"model": card["model"], "model_url": url, "promoted_at": now(),
                                              "dataset_version": card["dataset_version"], "registered_version": 1})


def start_server(models_root: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "BTC_PLATFORM_MODELS_DIR": str(models_root), "BTC_PLATFORM_SERVE_TARGET": TARGET}
    proc = subprocess.Popen([sys.executable, "-m", "btc_platform.serving", "--port", str(port),
                             "--log-level", "warning"], cwd=REPO, env=env)
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("the server did not become healthy in 180 s")


def request_rows(names: list[str], length: int, predictions: int, seed: int) -> list[dict]:
    """`predictions` symbols with `length` consecutive hourly rows each (length 1: plain rows)."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01", tz="UTC")
    return [{"symbol": f"S{k:02d}-USD", "ts": (start + pd.Timedelta(hours=h)).isoformat(),
             "features": dict(zip(names, rng.normal(size=len(names)).round(6).tolist()))}
            for k in range(predictions) for h in range(length)]


def to_frame(rows: list[dict], names: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame([r["features"] for r in rows], columns=names, dtype=float)
    frame.insert(0, "symbol", [r["symbol"] for r in rows])
    frame.insert(1, "ts", pd.to_datetime([r["ts"] for r in rows], utc=True))
    return frame


def figures(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "rps": round(len(ms) / (ms.sum() / 1000), 1)}


def direct_worker(model_url: str, body_path: str, n: int, warmup: int) -> None:
    """The baseline, in its own process: predictor.predict on the request's rows as a ready frame."""
    from btc_platform.training.predictors import load_predictor

    predictor = load_predictor(model_url)
    frame = to_frame(json.loads(Path(body_path).read_text())["rows"], predictor.feature_names)
    seconds = []
    for k in range(warmup + n):
        began = time.perf_counter()
        predictor.predict(frame)
        if k >= warmup:
            seconds.append(time.perf_counter() - began)
    print(json.dumps(seconds))


def measure(url: str, model_url: str, predictor, n: int, warmup: int, tmp: Path) -> dict:
    import httpx

    results = {}
    length = predictor.required_rows()
    with httpx.Client(base_url=url, timeout=60) as client:  # one keep-alive connection
        for case, predictions in (("single", 1), ("batch", BATCH)):
            rows = request_rows(predictor.feature_names, length, predictions, seed=predictions)
            body, http = json.dumps({"rows": rows}).encode(), []
            for k in range(warmup + n):
                began = time.perf_counter()
                response = client.post("/predict", content=body, headers={"content-type": "application/json"})
                elapsed = time.perf_counter() - began
                if response.status_code != 200 or len(response.json()["predictions"]) != predictions:
                    raise RuntimeError(f"{case}: HTTP {response.status_code}: {response.text[:300]}")
                if k >= warmup:
                    http.append(elapsed)
            (tmp / "body.json").write_bytes(body)
            worker = subprocess.run([sys.executable, __file__, "--direct", model_url, str(tmp / "body.json"),
                                     "--requests", str(n), "--warmup", str(warmup)],
                                    cwd=REPO, capture_output=True, text=True, check=True)
            direct = json.loads(worker.stdout.strip().splitlines()[-1])
            h, d = figures(http), figures(direct)
            results[case] = {"rows_per_request": len(rows), "predictions": predictions, "body_bytes": len(body),
                             "http": h, "direct": d, "ratio_p50": round(h["p50_ms"] / d["p50_ms"], 2),
                             "ratio_rps": round(d["rps"] / h["rps"], 2)}
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=300, help="sequential requests per case")
    p.add_argument("--smoke", action="store_true", help="30 requests per case (CI)")
    p.add_argument("--features", type=int, default=32)
    p.add_argument("--length", type=int, default=24, help="the LSTM's window (bars)")
    p.add_argument("--direct", nargs=2, metavar=("MODEL_URL", "BODY"), help=argparse.SUPPRESS)
    p.add_argument("--warmup", type=int, default=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.direct:
        direct_worker(*args.direct, args.requests, args.warmup)
        return 0
    n = 30 if args.smoke else args.requests
    logging.basicConfig(level=logging.WARNING)

    from btc_platform.training.predictors import load_predictor

    result = {"requests": n, "features": args.features, "lstm_length": args.length, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        began = time.perf_counter()
        urls = train_models(Path(tmp), args.features, args.length)
        result["train_s"] = round(time.perf_counter() - began, 1)
        for kind, model_url in urls.items():
            models_root = Path(tmp) / kind
            promote(models_root, model_url)
            began = time.perf_counter()
            proc, url = start_server(models_root)
            startup = time.perf_counter() - began
            try:
                result[kind] = {"server_start_s": round(startup, 1), **measure(
                    url, model_url, load_predictor(model_url), n, max(3, n // 10), Path(tmp))}
            finally:
                proc.terminate()
                proc.wait(30)

    print(f"POST /predict, {n} sequential requests per case, {args.features} features, {os.cpu_count()} CPUs")
    print(f"{'model':8} {'case':7} {'rows':>5} {'KiB':>6} | {'HTTP p50':>9} {'p99':>8} {'req/s':>7} | "
          f"{'direct p50':>10} {'p99':>8} {'calls/s':>8} | HTTP/direct p50")
    for kind in urls:
        for case in ("single", "batch"):
            r = result[kind][case]
            h, d = r["http"], r["direct"]
            print(f"{kind:8} {case:7} {r['rows_per_request']:>5} {r['body_bytes'] / 1024:>6.1f} | "
                  f"{h['p50_ms']:>7.2f}ms {h['p99_ms']:>6.2f}ms {h['rps']:>7.1f} | "
                  f"{d['p50_ms']:>8.2f}ms {d['p99_ms']:>6.2f}ms {d['rps']:>8.1f} | {r['ratio_p50']:.1f}x")
    print("BENCH_JSON " + json.dumps(result, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
