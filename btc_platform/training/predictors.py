"""A published numeric model version as one predictor: feature rows in, predicted return (and label
probabilities) out. Shared by the evaluation, which judges it, and the serving app, which answers with it.

- XGBoost (`model.json`): one prediction per row from that row's features.
- LSTM (`model.pt`): one prediction per row from the window of `length` bars of its symbol that ends
  at that row, scaled with the dataset version's train-only `scaler.json`; rows without a full window
  of consecutive bars get NaN.
Only rows at or before a row's time are read for its prediction (the evaluation's leakage guard checks it).
"""

from __future__ import annotations

import json
import posixpath
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from btc_platform.storage import open_url

CARD = "model_card.json"


def read_json(url: str, name: str) -> dict:
    fs, root = open_url(url)
    path = posixpath.join(root, name)
    if not fs.isfile(path):
        raise FileNotFoundError(f"{url.rstrip('/')}/{name} not found")
    return json.loads(fs.cat_file(path))


@dataclass
class Predictor:
    model_url: str
    card: dict
    feature_names: list[str]
    kind: str
    impl: object = field(repr=False, default=None)
    config: dict = field(default_factory=dict)

    @property
    def model(self) -> str:
        return self.card["model"]

    def required_rows(self) -> int:
        """Consecutive bars per symbol one prediction needs (1, or the LSTM's window)."""
        return int(self.config.get("length", 1))

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """One row per input row (same index): `pred_return`, and `prob_<class>` for the LSTM."""
        missing = [f for f in self.feature_names if f not in frame]
        if missing:
            raise KeyError(f"feature columns missing: {missing[:10]}{' ...' if len(missing) > 10 else ''}")
        if self.kind == "xgboost":
            return self._xgboost(frame)
        out = self._lstm(frame.reset_index(drop=True))  # positions, whatever the caller's index
        out.index = frame.index
        return out

    def _xgboost(self, frame: pd.DataFrame) -> pd.DataFrame:
        import xgboost as xgb

        X = frame[self.feature_names].to_numpy(dtype=np.float32)
        pred = self.impl.predict(xgb.DMatrix(X, feature_names=self.feature_names))
        return pd.DataFrame({"pred_return": pred.astype(float)}, index=frame.index)

    def _lstm(self, frame: pd.DataFrame) -> pd.DataFrame:
        from btc_platform.datasets.sequences import sequence_windows
        from btc_platform.training import lstm

        model, scaler = self.impl
        X = scaler.transform(frame[self.feature_names].to_numpy(dtype=np.float32))
        # The same windows the dataset built for training: consecutive bars of one symbol, ending at a row.
        windows = sequence_windows(frame, X, np.zeros(len(frame)), self.required_rows(),
                                   pd.Timedelta(self.config.get("bar", "1h")), extra={"row": np.arange(len(frame))})
        classes = list(self.config.get("label_classes", []))
        out = pd.DataFrame(np.nan, index=frame.index, columns=["pred_return", *(f"prob_{c}" for c in classes)])
        if len(windows["row"]):
            ret, probs = lstm.predict_windows(model, self.config, windows["X"])
            out.iloc[windows["row"], 0] = ret
            for k in range(len(classes)):
                out.iloc[windows["row"], 1 + k] = probs[:, k]
        return out


def older_fold_models(model_url: str) -> list[int]:
    """The older walk-forward folds this model version has its own models for (`folds/fold=<k>/`)."""
    fs, root = open_url(model_url)
    base = posixpath.join(root, "folds")
    if not fs.isdir(base):
        return []
    names = [posixpath.basename(p.rstrip("/")) for p in fs.ls(base, detail=False)]
    return sorted(int(n.split("=", 1)[1]) for n in names if n.startswith("fold=") and n.split("=", 1)[1].isdigit())


def load_predictor(model_url: str, fold: int | None = None) -> Predictor:
    """The predictor of a published model version (local folder or gs://); with `fold`, the model the
    version trained on that older walk-forward fold (its card is the version's)."""
    card = read_json(model_url, CARD)
    if fold is not None:
        version_url, model_url = model_url, f"{model_url.rstrip('/')}/folds/fold={fold}"
        card = {**card, "fold": fold, "dataset_url": f"{card['dataset_url'].rstrip('/')}/folds/fold={fold}",
                "version_url": version_url}
    fs, root = open_url(model_url)
    if fs.isfile(posixpath.join(root, "model.json")):
        import xgboost as xgb

        booster = xgb.Booster()
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "model.json"
            local.write_bytes(fs.cat_file(posixpath.join(root, "model.json")))
            booster.load_model(str(local))
        if not booster.feature_names:
            raise ValueError(f"{model_url}/model.json has no feature names: rows could not be matched to it")
        return Predictor(model_url, card, list(booster.feature_names), "xgboost", booster)
    if fs.isfile(posixpath.join(root, "model.pt")):
        from btc_platform.datasets.scaling import Scaler
        from btc_platform.training import lstm

        model, config = lstm.load_model(model_url)
        try:  # the model's own copy; older versions only have the dataset's
            scaler = Scaler.from_json(read_json(model_url, "scaler.json"))
        except FileNotFoundError:
            scaler = Scaler.from_json(read_json(card["dataset_url"], "scaler.json"))
        names = [str(n) for n in config["feature_names"]]
        if [str(n) for n in scaler.feature_names] != names:
            raise ValueError(f"{model_url}: the scaler's features differ from the model's (order or names)")
        return Predictor(model_url, card, names, "lstm", (model, scaler), config)
    raise FileNotFoundError(f"{model_url} holds neither model.json (XGBoost) nor model.pt (LSTM)")
