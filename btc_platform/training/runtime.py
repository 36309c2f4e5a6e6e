"""What every trainer process shares: the request, the device, the dataset, the model version, MLflow.

A trainer module defines `train(request, manifest, work_dir, log) -> metrics` and calls `main()`.
`main` reads the request from Dagster Pipes (extras) or the command line, checks the dataset version is
published, lets the trainer write its files into a local work folder, then

1. writes the model card (`README.md`, then `model_card.json` last: a folder without it is incomplete),
2. publishes the folder to `<models>/<model>/dataset=<version>/config=<hash>` (a local rename, or an
   upload to gs:// with the card last),
3. logs parameters, metrics and files to MLflow and registers the model version,
4. reports the same figures to Dagster as materialization metadata.

A failure anywhere before step 2 leaves nothing published and nothing registered. Only
`dagster_pipes` is imported here, never `dagster`; torch is imported only where a device is picked.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import posixpath
import shutil
import sys
import tempfile
import time
import uuid
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dagster_pipes import PipesEnvVarParamsLoader, open_dagster_pipes

from btc_platform.folders import replace_folder
from btc_platform.storage import open_url

CARD = "model_card.json"
METRICS = "metrics.json"  # the trainer's figures, beside its files in every model version
MANIFEST = "manifest.json"
DEFAULT_MLFLOW_DIR = "./data/mlflow"


class TrainerError(Exception):
    """The dataset, the base model or the request is unusable; the process exits 2 with this message."""


@dataclass
class TrainRequest:
    model: str  # the registered model name, e.g. "lstm_1h"
    dataset_url: str  # a published dataset version folder (local or gs://)
    model_url: str  # where this model version is published
    dataset_version: str = ""
    params: dict = field(default_factory=dict)  # overrides of the trainer's defaults
    base_model: str | None = None  # LLM trainers: a hub id or a local folder
    config_hash: str = ""

    def __post_init__(self):
        self.config_hash = self.config_hash or config_hash(self.params, self.base_model)


def config_hash(params: dict, base_model: str | None = None) -> str:
    """Names a training configuration: the same overrides and base model give the same hash."""
    text = json.dumps({"params": params, "base_model": base_model}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def model_version_url(models_root: str, model: str, dataset_version: str, cfg_hash: str) -> str:
    """`<models>/<model>/dataset=<version>/config=<hash>`: one folder per (model, data, config)."""
    if "://" not in models_root:
        models_root = str(Path(models_root).resolve())
    return f"{models_root.rstrip('/')}/{model}/dataset={dataset_version}/config={cfg_hash}"


def pick_device() -> str:
    """'cuda' when torch sees a GPU, else 'cpu'."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# ---- the dataset ----------------------------------------------------------------------------

def read_manifest(dataset_url: str) -> dict:
    """The version's manifest; a folder without one is an incomplete build and is refused."""
    fs, root = open_url(dataset_url)
    path = posixpath.join(root, MANIFEST)
    if not fs.isfile(path):
        raise TrainerError(f"dataset not found or incomplete: {dataset_url} has no {MANIFEST}")
    try:
        return json.loads(fs.cat_file(path))
    except ValueError as exc:
        raise TrainerError(f"corrupt {MANIFEST} in {dataset_url}: {exc}") from exc


def read_dataset_bytes(dataset_url: str, name: str) -> bytes:
    fs, root = open_url(dataset_url)
    path = posixpath.join(root, name)
    if not fs.isfile(path):
        raise TrainerError(f"dataset file not found: {dataset_url.rstrip('/')}/{name}")
    return fs.cat_file(path)


def read_npz(dataset_url: str, name: str, required: list[str]) -> dict:
    import numpy as np

    raw = read_dataset_bytes(dataset_url, name)
    try:
        with np.load(io.BytesIO(raw)) as npz:
            data = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise TrainerError(f"corrupt dataset file {dataset_url.rstrip('/')}/{name}: {exc}") from exc
    missing = [k for k in required if k not in data]
    if missing:
        raise TrainerError(f"{dataset_url.rstrip('/')}/{name} lacks arrays {missing}")
    return data


def fetch_files(dataset_url: str, names: list[str], local_dir: Path) -> Path:
    """Copy dataset files to a local folder (Hugging Face datasets reads local files)."""
    for name in names:
        target = Path(local_dir) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(read_dataset_bytes(dataset_url, name))
    return Path(local_dir)


def require_rows(counts: dict[str, int], minimum: dict[str, int], where: str) -> None:
    short = {s: n for s, n in counts.items() if n < minimum.get(s, 1)}
    if short:
        raise TrainerError(f"too few rows in {where}: {short}; need at least {minimum}")


# ---- the model version ----------------------------------------------------------------------

def code_version() -> str:
    from btc_platform.datasets.manifest import code_version as version

    return version()


def write_card(work_dir: Path, request: TrainRequest, manifest: dict, metrics: dict, defaults: dict,
               wall_s: float) -> dict:
    card = {
        "model": request.model,
        "dataset_url": request.dataset_url,
        "dataset_version": request.dataset_version or manifest.get("version", ""),
        "dataset_manifest_sha256": hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest(),
        "base_model": request.base_model,
        "hyperparameters": {**defaults, **request.params},
        "config_hash": request.config_hash,
        "device": metrics.get("device", "cpu"),
        "wall_time_s": round(wall_s, 3),
        "metrics": metrics,
        "code_version": code_version(),
        "files": sorted(str(p.relative_to(work_dir)) for p in work_dir.rglob("*") if p.is_file()),
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    lines = [f"# {request.model}", "", f"Trained on dataset `{card['dataset_version']}` ({request.dataset_url}).", ""]
    lines += [f"- **{k}**: {json.dumps(card[k], default=str)}" for k in
              ("base_model", "hyperparameters", "device", "wall_time_s", "code_version")]
    lines += ["", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.6g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()]
    (work_dir / "README.md").write_text("\n".join(lines) + "\n")
    (work_dir / CARD).write_text(json.dumps(card, indent=2, sort_keys=True, default=str))
    return card


def publish_model(work_dir: Path, model_url: str) -> str:
    """Put the finished work folder at `model_url`, whole: locally a rename into place (a previous
    folder there is replaced), on gs:// every file uploaded with the card last."""
    if "://" not in model_url:
        target = Path(model_url)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")  # same filesystem as target
        shutil.copytree(work_dir, staging)
        return str(replace_folder(staging, target))
    fs, root = open_url(model_url)
    files = sorted((p for p in work_dir.rglob("*") if p.is_file()), key=lambda p: p.name == CARD)
    for path in files:
        fs.put_file(str(path), posixpath.join(root, path.relative_to(work_dir).as_posix()))
    return model_url


# ---- MLflow ---------------------------------------------------------------------------------

def sqlite_tracking_uri(folder: str = DEFAULT_MLFLOW_DIR) -> str:
    """The default store: a SQLite file in `folder`."""
    return f"sqlite:///{Path(folder).resolve() / 'mlflow.db'}"


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, else a SQLite store under BTC_PLATFORM_MLFLOW_DIR (./data/mlflow)."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return sqlite_tracking_uri(os.environ.get("BTC_PLATFORM_MLFLOW_DIR", DEFAULT_MLFLOW_DIR))


def _experiment(mlflow, name: str, uri: str) -> str:
    found = mlflow.get_experiment_by_name(name)
    if found:
        return found.experiment_id
    # A SQLite store keeps its artifacts beside the database, not in the process's ./mlruns.
    location = ((Path(uri.removeprefix("sqlite:///")).resolve().parent / "artifacts").as_uri()
                if uri.startswith("sqlite:") else None)
    return mlflow.create_experiment(name, artifact_location=location)


def register(request: TrainRequest, card: dict, work_dir: Path) -> dict:
    """Log the run (parameters, metrics, the model folder) and register it as a model version."""
    import mlflow
    from mlflow import MlflowClient

    uri = tracking_uri()
    if uri.startswith("sqlite:///"):  # SQLite makes the file, not its folder
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    experiment_id = _experiment(mlflow, f"btc_platform/{request.model}", uri)
    numeric = {k: float(v) for k, v in card["metrics"].items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v}
    tags = {"dataset_version": card["dataset_version"], "config_hash": request.config_hash,
            "device": card["device"], "code_version": card["code_version"], "model_url": request.model_url}
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{request.model}:{card['dataset_version']}",
                          tags=tags) as run:
        mlflow.log_params({k: json.dumps(v, default=str)[:500] for k, v in card["hyperparameters"].items()}
                          | {"base_model": str(request.base_model), "dataset_url": request.dataset_url})
        mlflow.log_metrics(numeric | {"wall_time_s": card["wall_time_s"]})
        mlflow.log_artifacts(str(work_dir), artifact_path="model")
        source = mlflow.get_artifact_uri("model")
    client = MlflowClient(tracking_uri=uri)
    if not client.search_registered_models(filter_string=f"name = '{request.model}'"):
        client.create_registered_model(request.model, description=f"btc_platform {request.model}")
    version = client.create_model_version(request.model, source=source, run_id=run.info.run_id, tags=tags)
    return {"mlflow_run_id": run.info.run_id, "registered_version": int(version.version), "tracking_uri": uri}


# ---- the process ----------------------------------------------------------------------------

Trainer = Callable[[TrainRequest, dict, Path, logging.Logger], dict]


def older_folds(dataset_url: str, manifest: dict) -> list[tuple[int, str]]:
    """(k, url) of the walk-forward folds before the newest, which sit under `folds/fold=<k>/`."""
    n = int(manifest.get("n_folds") or 1)
    return [(k, f"{dataset_url.rstrip('/')}/folds/fold={k}") for k in range(n - 1)]


def train_older_folds(request: TrainRequest, train: Trainer, manifest: dict, work_dir: Path,
                      log: logging.Logger) -> dict:
    """Walk-forward: one more model per older fold, fitted on that fold's train part only, into
    `folds/fold=<k>/`, so the evaluation can score every fold's test window with a model that never saw
    it (the newest fold's model was trained on the older test windows)."""
    figures = {}
    for k, url in older_folds(request.dataset_url, manifest):
        fold_dir = work_dir / "folds" / f"fold={k}"
        fold_dir.mkdir(parents=True)
        fold_request = TrainRequest(model=request.model, dataset_url=url, model_url=request.model_url,
                                    dataset_version=request.dataset_version, params=request.params,
                                    base_model=request.base_model, config_hash=request.config_hash)
        log.info(f"walk-forward fold {k}: training on {url}")
        fold = train(fold_request, manifest, fold_dir, log)
        (fold_dir / METRICS).write_text(json.dumps(fold, indent=2, sort_keys=True, default=str))
        figures[str(k)] = {key: fold[key] for key in ("rmse", "zero_rmse", "n_train", "n_test") if key in fold}
    return figures


def execute(request: TrainRequest, train: Trainer, defaults: dict, log: logging.Logger,
            track: bool = True, walk_forward: bool = False) -> dict:
    """Train, card, publish, register; returns the figures reported to Dagster. With `walk_forward`
    (numeric trainers) every older fold gets its own model too, unless params say `walk_forward: false`."""
    began = time.monotonic()
    manifest = read_manifest(request.dataset_url)
    request.dataset_version = request.dataset_version or str(manifest.get("version", ""))
    with tempfile.TemporaryDirectory(prefix=f"{request.model}-") as tmp:
        work_dir = Path(tmp) / "model"
        work_dir.mkdir()
        params = dict(request.params)
        if not params.pop("walk_forward", True):
            walk_forward = False
        request.params = params  # the trainer sees only its own hyperparameters
        metrics = train(request, manifest, work_dir, log)
        if walk_forward:
            metrics["folds"] = train_older_folds(request, train, manifest, work_dir, log)
        (work_dir / METRICS).write_text(json.dumps(metrics, indent=2, sort_keys=True, default=str))
        card = write_card(work_dir, request, manifest, metrics, defaults, time.monotonic() - began)
        url = publish_model(work_dir, request.model_url)
        registry = register(request, card, work_dir) if track else {}
    log.info(f"{request.model} on {card['device']} in {card['wall_time_s']:.1f} s; published {url}")
    return {**metrics, "model_path": url, "wall_time_s": card["wall_time_s"], "config_hash": request.config_hash,
            "dataset_version": request.dataset_version, "base_model": str(request.base_model), **registry}


def to_pipes_metadata(figures: dict) -> dict:
    md: dict = {}
    for key, value in figures.items():
        if key == "model_path":
            md[key] = {"raw_value": value, "type": "path"}
        elif isinstance(value, bool) or value is None:
            md[key] = {"raw_value": str(value), "type": "text"}
        elif isinstance(value, int):
            md[key] = {"raw_value": value, "type": "int"}
        elif isinstance(value, float):
            md[key] = {"raw_value": value, "type": "float"}
        elif isinstance(value, (dict, list)):
            md[key] = {"raw_value": value, "type": "json"}
        else:
            md[key] = {"raw_value": str(value), "type": "text"}
    return md


def _parse_args(name: str, argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m btc_platform.training.{name}")
    parser.add_argument("--dataset-dir", help="a published dataset version (folder or gs:// URL)")
    parser.add_argument("--model-dir", help="where the model version is published (folder or gs:// URL)")
    parser.add_argument("--params", type=json.loads, default={}, help="JSON dict of overrides")
    parser.add_argument("--base-model", default=None, help="LLM trainers: hub id or local folder")
    parser.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    args, _ = parser.parse_known_args(argv)  # Pipes may add its own CLI args
    return args


def main(name: str, train: Trainer, defaults: dict, argv: list[str] | None = None,
         walk_forward: bool = False) -> int:
    """The trainer's process: Pipes when Dagster launched it, else the command line. Exit 2 on a
    TrainerError (bad dataset, base model or request) with the message on stderr."""
    args = _parse_args(name, argv)
    try:
        if PipesEnvVarParamsLoader().is_dagster_pipes_process():
            with open_dagster_pipes() as pipes:
                extras = pipes.extras
                request = TrainRequest(
                    model=extras.get("model", name), dataset_url=extras.get("dataset_dir") or args.dataset_dir,
                    model_url=extras.get("model_dir") or args.model_dir,
                    dataset_version=extras.get("dataset_version", ""),
                    params={**args.params, **(extras.get("params") or {})},
                    base_model=extras.get("base_model") or args.base_model,
                    config_hash=extras.get("config_hash", ""))
                if not request.dataset_url or not request.model_url:
                    raise TrainerError("extras must name dataset_dir and model_dir")
                figures = execute(request, train, defaults, pipes.log, track=not extras.get("no_mlflow"),
                                  walk_forward=walk_forward)
                pipes.report_asset_materialization(metadata=to_pipes_metadata(figures),
                                                   data_version=f"{request.dataset_version}:{request.config_hash}")
        else:
            if not args.dataset_dir or not args.model_dir:
                raise TrainerError("outside Dagster, pass --dataset-dir and --model-dir")
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
            request = TrainRequest(model=name, dataset_url=args.dataset_dir, model_url=args.model_dir,
                                   params=args.params, base_model=args.base_model)
            figures = execute(request, train, defaults, logging.getLogger(name), track=not args.no_mlflow,
                              walk_forward=walk_forward)
            print(json.dumps(figures, default=str))
    except TrainerError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    return 0
