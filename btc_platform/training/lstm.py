"""LSTM on the scaled windows of `sequences.npz`: `python -m btc_platform.training.lstm`.

A runtime trainer (btc_platform.training.runtime) with two heads on the last hidden state: the
regression of the target (the 1h return, learnt divided by the train std of y so that it weighs
like the class loss) and the 3-class label (sell/hold/buy, -1 = unknown and ignored). The loss is
MSE + label_weight * cross-entropy; AdamW, gradient clipping, early stopping on the validation loss
with the best weights restored. On CUDA it trains in bfloat16 autocast (float16 with a GradScaler
where bf16 is unsupported). Writes `model.pt` (state_dict) and `model_config.json`; the runtime adds `metrics.json`.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import posixpath
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from btc_platform.storage import open_url
from btc_platform.training import runtime
from btc_platform.training.metrics import evaluate, evaluate_labels
from btc_platform.training.runtime import TrainerError, TrainRequest

NAME = "lstm_1h"
FILE = "sequences.npz"
SPLITS = ("train", "validation", "test")
MIN_WINDOWS = {"train": 32, "validation": 8, "test": 8}
DEFAULT_PARAMS = {"hidden_size": 64, "num_layers": 1, "dropout": 0.1, "lr": 2e-3, "weight_decay": 1e-4,
                  "batch_size": 256, "max_epochs": 50, "patience": 6, "label_weight": 0.5, "grad_clip": 1.0,
                  "seed": 0, "device": None}
MODEL_ARGS = ("n_features", "hidden_size", "num_layers", "dropout", "n_classes")  # SequenceModel's, from the config


class SequenceModel(nn.Module):
    def __init__(self, n_features: int, hidden_size: int, num_layers: int, dropout: float, n_classes: int):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.regression = nn.Linear(hidden_size, 1)
        self.classes = nn.Linear(hidden_size, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, _ = self.lstm(x)
        last = self.dropout(out[:, -1])
        return self.regression(last).squeeze(-1), self.classes(last)


def load_sequences(dataset_url: str) -> dict:
    """Per split (X float32 with NaN -> 0, y, label int64); TrainerError naming file and split when
    arrays are missing, corrupt, disagree or hold too few windows."""
    where = f"{dataset_url.rstrip('/')}/{FILE}"
    raw = runtime.read_npz(dataset_url, FILE, [f"{a}_{s}" for s in SPLITS for a in ("X", "y", "label")])
    data = {}
    for s in SPLITS:
        X, y, label = raw[f"X_{s}"], raw[f"y_{s}"], raw[f"label_{s}"]
        if X.ndim != 3 or y.shape != (len(X),) or label.shape != (len(X),):
            raise TrainerError(f"{where}: {s} arrays disagree: X {X.shape}, y {y.shape}, label {label.shape}")
        if not np.isfinite(y).all():
            raise TrainerError(f"{where}: y_{s} has non-finite values")
        X = np.nan_to_num(X.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        data[s] = (X, y.astype(np.float32), label.astype(np.int64))
    runtime.require_rows({s: len(data[s][0]) for s in SPLITS}, MIN_WINDOWS, where)
    if len({data[s][0].shape[2] for s in SPLITS}) > 1:
        raise TrainerError(f"{where}: splits have different feature counts")
    n_features = data["train"][0].shape[2]
    names = [str(n) for n in raw.get("feature_names", [f"f{i}" for i in range(n_features)])]
    classes = [str(c) for c in raw.get("label_classes", ["sell", "hold", "buy"])]
    for s in SPLITS:
        if ((data[s][2] < -1) | (data[s][2] >= len(classes))).any():
            raise TrainerError(f"{where}: label_{s} has codes outside -1..{len(classes) - 1}")
    info = {"feature_names": names, "label_classes": classes, "length": int(data["train"][0].shape[1]),
            "target_name": str(raw.get("target_name", "target_return_1h")),
            "label_name": str(raw.get("label_name", "target_label_24h"))}
    return {"splits": data, "info": info}


def _precision(device: torch.device) -> torch.dtype | None:
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _outputs(model: nn.Module, X: torch.Tensor, batch: int, amp: torch.dtype | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled return and class logits for every window, in eval mode, as float32 on the CPU."""
    model.eval()
    rets, logits = [], []
    with torch.no_grad(), torch.autocast(device_type=X.device.type, dtype=amp or torch.float32, enabled=amp is not None):
        for xb in X.split(batch):
            r, c = model(xb)
            rets.append(r.float().cpu())
            logits.append(c.float().cpu())
    return torch.cat(rets), torch.cat(logits)


def _loss(ret: torch.Tensor, logits: torch.Tensor, y: torch.Tensor, label: torch.Tensor, weight: float) -> torch.Tensor:
    known = (label >= 0).sum()  # a batch without labels adds no class loss (and no NaN)
    ce = F.cross_entropy(logits.float(), label, ignore_index=-1, reduction="sum") / known.clamp(min=1)
    return F.mse_loss(ret.float(), y) + weight * ce


def fit(model: nn.Module, tensors: dict, p: dict, device: torch.device, log: logging.Logger) -> dict:
    """Mini-batch AdamW with early stopping on the validation loss; the best weights are restored."""
    amp = _precision(device)
    opt = torch.optim.AdamW(model.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    order = torch.Generator().manual_seed(int(p["seed"]))
    X, y, label = tensors["train"]
    Xv, (yv, lv) = tensors["validation"][0], (t.cpu() for t in tensors["validation"][1:])
    best, best_epoch, best_state, stale, seen, busy, epoch = math.inf, 0, None, 0, 0, 0.0, 0
    for epoch in range(1, max(1, int(p["max_epochs"])) + 1):
        model.train()
        began = time.perf_counter()
        for idx in torch.randperm(len(X), generator=order).split(int(p["batch_size"])):
            idx = idx.to(X.device)
            with torch.autocast(device_type=device.type, dtype=amp or torch.float32, enabled=amp is not None):
                ret, logits = model(X[idx])
            loss = _loss(ret, logits, y[idx], label[idx], p["label_weight"])
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(model.parameters(), p["grad_clip"])
            scaler.step(opt)
            scaler.update()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        busy, seen = busy + time.perf_counter() - began, seen + len(X)
        val = float(_loss(*_outputs(model, Xv, 4 * int(p["batch_size"]), amp), yv, lv, p["label_weight"]))
        log.info(f"epoch {epoch}: train loss {loss.item():.4f} (last batch), validation loss {val:.4f}")
        if val < best:
            best, best_epoch, stale = val, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= int(p["patience"]):
                break
    if best_state is None:
        raise TrainerError(f"the validation loss was never finite; lower lr (now {p['lr']})")
    model.load_state_dict(best_state)
    return {"epochs_run": epoch, "best_epoch": best_epoch, "best_val_loss": best,
            "samples_per_s": seen / busy if busy > 0 else math.nan, "train_time_s": round(busy, 3),
            "precision": {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(amp, "fp32")}


def train(request: TrainRequest, manifest: dict, work_dir: Path, log: logging.Logger) -> dict:
    p = {**DEFAULT_PARAMS, **request.params}
    loaded = load_sequences(request.dataset_url)
    splits, info = loaded["splits"], loaded["info"]
    device = torch.device(p["device"] or runtime.pick_device())
    torch.manual_seed(int(p["seed"]))
    y_scale = float(np.std(splits["train"][1])) or 1.0
    tensors = {s: (torch.from_numpy(X).to(device), torch.from_numpy(y / y_scale).to(device),
                   torch.from_numpy(lab).to(device)) for s, (X, y, lab) in splits.items()}
    config = {"n_features": splits["train"][0].shape[2], "hidden_size": int(p["hidden_size"]),
              "num_layers": int(p["num_layers"]), "dropout": float(p["dropout"]),
              "n_classes": len(info["label_classes"]), **info, "y_scale": y_scale,
              "bar": str(manifest.get("bar", "1h"))}
    model = SequenceModel(*(config[k] for k in MODEL_ARGS))
    model.to(device)
    log.info(f"training on {device}: {len(splits['train'][0])} windows of {info['length']} x {config['n_features']}")
    metrics = {"target": info["target_name"], "device": device.type, **fit(model, tensors, p, device, log)}
    for prefix, s in (("", "test"), ("val_", "validation")):
        ret, logits = _outputs(model, tensors[s][0], 4 * int(p["batch_size"]), _precision(device))
        figures = evaluate(splits[s][1], ret.numpy() * y_scale)
        figures |= evaluate_labels(splits[s][2], logits.argmax(1).numpy(), splits["train"][2])
        metrics |= {prefix + k: v for k, v in figures.items()}
    metrics |= {"n_train": len(splits["train"][0]), "n_val": len(splits["validation"][0]),
                "n_test": len(splits["test"][0])}
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, work_dir / "model.pt")
    # The inputs were scaled with the dataset's train-only scaler: the model carries it, so serving
    # needs no access to the dataset.
    try:
        (work_dir / "scaler.json").write_bytes(runtime.read_dataset_bytes(request.dataset_url, "scaler.json"))
    except TrainerError:
        log.warning(f"{request.dataset_url} has no scaler.json: the model folder goes without it")
    (work_dir / "model_config.json").write_text(json.dumps(config, indent=2))
    log.info(f"test rmse {metrics['rmse']:.6g} vs zero {metrics['zero_rmse']:.6g}, label accuracy "
             f"{metrics['label_accuracy']:.3f} vs majority {metrics['majority_accuracy']:.3f}")
    return metrics


def load_model(folder: str | Path) -> tuple[SequenceModel, dict]:
    """The trained module (eval mode, on the CPU) and its config from a model folder or URL."""
    fs, root = open_url(str(folder))
    config = json.loads(fs.cat_file(posixpath.join(root, "model_config.json")))
    with fs.open(posixpath.join(root, "model.pt"), "rb") as f:
        state = torch.load(f, map_location="cpu", weights_only=True)
    model = SequenceModel(*(config[k] for k in MODEL_ARGS))
    model.load_state_dict(state)
    return model.eval(), config


def predict(folder: str | Path, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns (in the target's units) and class probabilities (N, n_classes) for windows X (N, T, F)."""
    model, config = load_model(folder)
    return predict_windows(model, config, X)


def predict_windows(model: SequenceModel, config: dict, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`predict` with a model already loaded (evaluation and serving keep it in memory)."""
    X = torch.from_numpy(np.nan_to_num(np.asarray(X, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0))
    with torch.no_grad():
        ret, logits = _outputs(model, X, 1024, None)
    return ret.numpy() * config["y_scale"], torch.softmax(logits, 1).numpy()


def main(argv: list[str] | None = None) -> int:
    return runtime.main(name=NAME, train=train, defaults=DEFAULT_PARAMS, argv=argv, walk_forward=True)


if __name__ == "__main__":
    sys.exit(main())
