"""The champion of one target behind HTTP: `uvicorn btc_platform.serving.app:app`.

The app serves whatever model version the champion pointer (`<models>/_champions/<target>.json`) names,
or, when an MLflow tracking URI is given, the version the registry alias `champion` of that model names
(the alias is what a person moves by hand in the MLflow UI; its version's `model_url` tag says where the
files are). It loads it at start and polls every `reload_seconds`: when the version or `promoted_at`
changed it loads the new version beside the old one and swaps the reference, so a request is answered
wholly by one model; a failed load keeps the old model and shows in /health; a pointer that names no
champion any more (a demotion) unloads it, and the prediction endpoints answer 503.

Numeric champions (XGBoost, LSTM) answer with a predicted return. An LLM champion (a LoRA adapter on its
base) answers each row with the prompt the preference datasets write for it (`prompt_text`: the market
state in words at the bar's close), generated greedily and decoded by the one action decoder.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import os
import posixpath
import tempfile
import threading
from pathlib import Path
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AllowInfNan, BaseModel, Field, Strict

from btc_platform.config import Settings
from btc_platform.storage import open_url
from btc_platform.training.champions import read_champion
from btc_platform.training.predictors import CARD, Predictor, load_predictor, read_json
from btc_platform.warehouse.duckdb_store import read_table

FLAT_BAND = 1e-4  # |predicted return| under one basis point is "flat": no trade is worth its costs
LLM_MAX_NEW_TOKENS = 48  # as the evaluation judged it
LLM_BAR = pd.Timedelta("1h")  # the preference datasets' bar: a row's decision time is its open + this
MAX_ERRORS = 100  # a 422 lists at most this many missing features, not rows x features of them
HEALTH_FIELDS = ("model", "model_url", "registered_version", "dataset_version", "promoted_at", "kind",
                 "features", "loaded_at")

# Strict: "1.5" or true is not a number; null is allowed and means missing, as NaN did in training.
Feature = Annotated[float, Strict(), AllowInfNan(False)] | None


class Row(BaseModel):
    symbol: str
    ts: dt.datetime  # the bar's open time, as in the warehouse; naive times are read as UTC
    features: dict[str, Feature]


class PredictRequest(BaseModel):
    rows: list[Row] = Field(min_length=1)


class Prediction(BaseModel):
    symbol: str
    ts: dt.datetime
    pred_return: float | None
    direction: Literal["up", "down", "flat"] | None
    probs: dict[str, float] | None = None  # the LSTM's label classes (sell/hold/buy)


class ModelInfo(BaseModel):
    model: str
    registered_version: int | str | None
    dataset_version: str | None


class PredictResponse(ModelInfo):
    predictions: list[Prediction]


class LatestResponse(Prediction, ModelInfo):
    age_seconds: float  # now - the bar's close (when its features became known)


class ActionPrediction(BaseModel):
    symbol: str
    ts: dt.datetime
    action: str | None  # the decoded action's name (buy, sell, hold, limit_buy_25bps, ...); None if invalid
    valid: bool
    reason: str | None  # why the answer could not be decoded
    answer: str  # the model's words


class ActionResponse(ModelInfo):
    predictions: list[ActionPrediction]


class LatestActionResponse(ActionPrediction, ModelInfo):
    age_seconds: float


@dataclass(frozen=True)
class Champion:
    record: dict  # the pointer as read
    card: dict
    kind: str  # xgboost | lstm | llm
    predictor: Predictor | None  # None for an LLM
    loaded_at: str
    llm: tuple | None = None  # (model, tokenizer) of an LLM champion

    def info(self) -> dict:
        return {"model": self.record.get("model") or self.card.get("model"),
                "registered_version": self.record.get("registered_version"),
                "dataset_version": self.record.get("dataset_version") or self.card.get("dataset_version")}


class ChampionWatcher:
    """The serving champion; `refresh` follows the pointer (and the registry alias, when MLflow is given).
    Readers take `current` once per request."""

    def __init__(self, models_root: str, target: str, tracking_uri: str | None = None, llm_device: str | None = None):
        self.models_root, self.target, self.tracking_uri, self.llm_device = models_root, target, tracking_uri, llm_device
        self.current: Champion | None = None
        self.last_reload_error: str | None = None
        self.alias_error: str | None = None
        self._lock = threading.Lock()  # start-up and the poller never load at the same time

    def resolve(self) -> dict | None:
        """The record to serve: the pointer, moved to the alias's version when the registry disagrees."""
        record = read_champion(self.models_root, self.target)
        if record is None or not self.tracking_uri:
            return record
        try:
            from mlflow import MlflowClient

            version = MlflowClient(tracking_uri=self.tracking_uri).get_model_version_by_alias(record["model"], "champion")
            self.alias_error = None
        except Exception as exc:  # noqa: BLE001 (no alias, or no registry: the pointer is the fallback)
            self.alias_error = f"{type(exc).__name__}: {str(exc)[:200]}"
            return record
        url = (version.tags or {}).get("model_url")
        if url and url != record.get("model_url"):
            # The rest of the pointer describes the other version: the loaded card says which data it saw.
            return {"model": record["model"], "model_url": url, "registered_version": int(version.version),
                    "promoted_at": f"mlflow alias champion -> version {version.version}", "source": "mlflow_alias"}
        return record

    def refresh(self) -> None:
        with self._lock:
            try:
                record = self.resolve()
                if record is None:
                    self.current, self.last_reload_error = None, None
                    return
                old = self.current
                if old and [old.record.get(k) for k in ("model_url", "promoted_at")] == \
                        [record.get(k) for k in ("model_url", "promoted_at")]:
                    return
                self.current, self.last_reload_error = self._load(record, self.llm_device), None
            except Exception as exc:  # noqa: BLE001 (a bad version must not take the server down)
                self.last_reload_error = f"{type(exc).__name__}: {exc}"  # retried at the next poll

    @staticmethod
    def _load(record: dict, llm_device: str | None = None) -> Champion:
        url, now = record["model_url"], dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        card = read_json(url, CARD)
        fs, root = open_url(url)
        if fs.isfile(posixpath.join(root, "adapter_config.json")):
            return Champion(record, card, "llm", None, now, llm=load_llm(url, llm_device))
        predictor = load_predictor(url)
        return Champion(record, predictor.card, predictor.kind, predictor, now)


def load_llm(url: str, device: str | None) -> tuple:
    """(model, tokenizer): the adapter on its base, in eval mode. A gs:// version is copied locally first."""
    from btc_platform.evaluation.llm_eval import _local_model_dir
    from btc_platform.training.llm_common import load_trained

    local = Path(tempfile.mkdtemp(prefix="serve-llm-"))
    # The adapter names the base it was trained on; a serving image that keeps the base elsewhere says so.
    base = os.environ.get("BTC_PLATFORM_SERVE_BASE_MODEL") or None
    return load_trained(_local_model_dir(url, local), base_model=base, device=device or "cpu")


def llm_answers(champ: Champion, frame: pd.DataFrame, bar: pd.Timedelta) -> list[dict]:
    """One decoded action per row: the prompt the preference datasets write for the row, answered greedily."""
    from btc_platform.datasets.preferences import prompt_text
    from btc_platform.llm.actions import try_decode
    from btc_platform.training.llm_common import generate

    rows = frame.to_dict("records")
    prompts = [prompt_text({**r, "decision_at": r.get("decision_at") if pd.notna(r.get("decision_at", None))
                            else pd.Timestamp(r["ts"]) + bar}) for r in rows]
    model, tokenizer = champ.llm
    answers = generate(model, tokenizer, prompts, max_new_tokens=LLM_MAX_NEW_TOKENS, batch_size=len(prompts))
    out = []
    for r, answer in zip(rows, answers):
        action, reason = try_decode(answer)
        out.append({"symbol": r["symbol"], "ts": r["ts"], "action": action.name if action else None,
                    "valid": action is not None, "reason": reason, "answer": answer})
    return out


def _direction(value: float) -> str | None:
    if not math.isfinite(value):
        return None
    return "flat" if abs(value) < FLAT_BAND else "up" if value > 0 else "down"


def _predictions(out: pd.DataFrame, frame: pd.DataFrame, index) -> list[dict]:
    classes = [c.removeprefix("prob_") for c in out.columns if c.startswith("prob_")]
    result = []
    for i in index:
        ret = float(out.at[i, "pred_return"])
        result.append({"symbol": frame.at[i, "symbol"], "ts": frame.at[i, "ts"],
                       "pred_return": ret if math.isfinite(ret) else None, "direction": _direction(ret),
                       "probs": {c: float(out.at[i, f"prob_{c}"]) for c in classes} or None})
    return result


def _window_shortfalls(p: Predictor, frame: pd.DataFrame) -> dict[str, int]:
    """Symbols whose newest row lacks the LSTM's window, with the run of rows one bar apart that ends
    there (a gap or a repeated ts breaks the run: the predictor would answer NaN)."""
    bar, short = pd.Timedelta(p.config.get("bar", "1h")), {}
    for symbol, group in frame.groupby("symbol", sort=False):
        t = np.sort(pd.DatetimeIndex(group["ts"]).as_unit("ns").asi8)
        breaks = np.flatnonzero(np.diff(t) != bar.value)
        run = int(len(t) - (breaks[-1] + 1 if len(breaks) else 0))
        if run < p.required_rows():
            short[symbol] = run
    return short


def create_app(models_root: str, target: str = "target_return_1h", warehouse_path: str | None = None,
               table: str = "marts.training_table_1h", reload_seconds: float = 5.0,
               tracking_uri: str | None = None, llm_device: str | None = None) -> FastAPI:
    watcher = ChampionWatcher(models_root, target, tracking_uri, llm_device)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.to_thread(watcher.refresh)  # ready only once the champion is loaded

        async def poll():
            while True:
                await asyncio.sleep(max(reload_seconds, 0.05))
                await asyncio.to_thread(watcher.refresh)  # loading must not block the event loop

        task = asyncio.create_task(poll())
        try:
            yield
        finally:
            task.cancel()

    app = FastAPI(title="btc_platform serving", lifespan=lifespan)
    app.state.watcher = watcher

    def servable() -> Champion:
        champ = watcher.current
        if champ is None:
            raise HTTPException(503, f"no champion for {target}")
        return champ

    @app.get("/health")
    def health():
        champ = watcher.current
        body = {"status": "no_champion", "target": target, **dict.fromkeys(HEALTH_FIELDS)}
        if champ:
            body |= {"status": "ok", **champ.info(), "model_url": champ.record.get("model_url"),
                     "promoted_at": champ.record.get("promoted_at"), "kind": champ.kind,
                     "features": len(champ.predictor.feature_names) if champ.predictor else None,
                     "loaded_at": champ.loaded_at, "source": champ.record.get("source", "pointer")}
        body["last_reload_error"] = watcher.last_reload_error
        body["mlflow_alias_error"] = watcher.alias_error
        return JSONResponse(body, status_code=200 if champ else 503)

    @app.post("/predict", response_model=PredictResponse | ActionResponse)
    def predict(request: PredictRequest):
        champ = servable()
        if champ.kind == "llm":  # the market state in words, whatever features the row has
            frame = pd.DataFrame([{**row.features, "symbol": row.symbol, "ts": pd.Timestamp(row.ts, tz="UTC")
                                   if row.ts.tzinfo is None else pd.Timestamp(row.ts)} for row in request.rows])
            return {**champ.info(), "predictions": llm_answers(champ, frame, LLM_BAR)}
        p = champ.predictor
        # The feature set is the model's, known only now: check it the way FastAPI checks a body.
        errors = [{"type": "missing", "loc": ["body", "rows", i, "features", name], "msg": "Field required",
                   "input": None} for i, row in enumerate(request.rows) for name in p.feature_names
                  if name not in row.features]
        if errors:
            raise RequestValidationError(errors[:MAX_ERRORS])
        frame = pd.DataFrame([row.features for row in request.rows], columns=p.feature_names, dtype=float)
        frame.insert(0, "symbol", [row.symbol for row in request.rows])
        frame.insert(1, "ts", pd.to_datetime([row.ts for row in request.rows], utc=True))
        if p.kind == "xgboost":
            return {**champ.info(), "predictions": _predictions(p.predict(frame), frame, frame.index)}
        short = _window_shortfalls(p, frame)
        if short:
            raise RequestValidationError([
                {"type": "too_short", "loc": ["body", "rows"], "input": None,
                 "msg": f"{champ.info()['model']} needs {p.required_rows()} consecutive rows one "
                        f"{p.config.get('bar', '1h')} bar apart per symbol, ending at the row to predict (the "
                        f"earlier rows are its context); {symbol} has {n}",
                 "ctx": {"symbol": symbol, "needed": p.required_rows(), "consecutive": n}}
                for symbol, n in short.items()])
        # One prediction per symbol, for its newest row; only the window it needs goes to the model.
        newest = [g["ts"].idxmax() for _, g in frame.groupby("symbol", sort=False)]  # request order
        window = frame.sort_values(["symbol", "ts"]).groupby("symbol").tail(p.required_rows())
        return {**champ.info(), "predictions": _predictions(p.predict(window), window, newest)}

    @app.get("/predict/latest", response_model=LatestResponse | LatestActionResponse)
    def latest(symbol: str):
        champ = servable()
        p = champ.predictor
        if not warehouse_path:
            raise HTTPException(503, "no warehouse configured (BTC_PLATFORM_DUCKDB_PATH)")
        quoted = symbol.replace("'", "''")  # read_table takes no parameters: quote the literal
        needed = p.required_rows() if p else 1
        sql = f"SELECT * FROM {table} WHERE symbol = '{quoted}' ORDER BY ts DESC LIMIT {needed}"
        try:
            rows = read_table(warehouse_path, sql)
        except Exception as exc:  # noqa: BLE001 (a missing file or table is the deployment's fault, not the caller's)
            raise HTTPException(503, f"warehouse {warehouse_path} table {table} unreadable: {exc}") from exc
        if rows.empty:
            raise HTTPException(404, f"no rows for symbol {symbol!r} in {table}")
        if champ.kind == "llm":
            rows["ts"] = pd.to_datetime(rows["ts"], utc=True)
            (answer,) = llm_answers(champ, rows, LLM_BAR)
            close = rows.at[0, "decision_at"] if "decision_at" in rows and pd.notna(rows.at[0, "decision_at"]) \
                else rows.at[0, "ts"] + LLM_BAR
            age = (pd.Timestamp.now(tz="UTC") - pd.to_datetime(close, utc=True)).total_seconds()
            return {**answer, **champ.info(), "age_seconds": age}
        absent = [n for n in p.feature_names if n not in rows]
        if absent:
            raise HTTPException(503, f"{table} lacks features the champion needs: {absent[:10]}")
        rows = rows.iloc[::-1].reset_index(drop=True)
        rows["ts"] = pd.to_datetime(rows["ts"], utc=True)
        short = _window_shortfalls(p, rows) if p.kind == "lstm" else {}
        if short:  # a gap in the warehouse, not the caller's mistake
            raise HTTPException(503, f"{table} has {short[symbol]} consecutive bars of {symbol} up to its newest; "
                                     f"the champion needs {p.required_rows()}")
        newest = rows.index[-1]
        (prediction,) = _predictions(p.predict(rows), rows, [newest])
        # The mart's decision_at is the bar's close; without it, the close is ts + one bar.
        bar_close = rows.at[newest, "decision_at"] if "decision_at" in rows else None
        if bar_close is None or pd.isna(bar_close):
            bar_close = rows.at[newest, "ts"] + pd.Timedelta(p.config.get("bar", "1h"))
        age = (pd.Timestamp.now(tz="UTC") - pd.to_datetime(bar_close, utc=True)).total_seconds()
        return {**prediction, **champ.info(), "age_seconds": age}

    return app


def app_from_env(env: dict[str, str] | None = None) -> FastAPI:
    env = os.environ if env is None else env
    settings = Settings.from_env(env)
    return create_app(settings.models_dir, env.get("BTC_PLATFORM_SERVE_TARGET", "target_return_1h"),
                      settings.duckdb_path, tracking_uri=serving_tracking_uri(env))


def serving_tracking_uri(env) -> str | None:
    """MLFLOW_TRACKING_URI, else the local SQLite registry the trainers write when it exists; None: the
    pointer alone."""
    if env.get("MLFLOW_TRACKING_URI"):
        return env["MLFLOW_TRACKING_URI"]
    db = Path(env.get("BTC_PLATFORM_MLFLOW_DIR", "./data/mlflow")).resolve() / "mlflow.db"
    return f"sqlite:///{db}" if db.is_file() else None


app = app_from_env()  # no I/O here: the champion is loaded when the server starts
