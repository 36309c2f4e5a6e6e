"""Instruction datasets per the 90-day prediction guide: Alpaca rows (instruction / input / output),
the time-series context variant, chat `messages` and TRL prompt/completion rows.

Every number in an instruction or input comes from the sample's own row or earlier rows of its
symbol (all known at its decision time); the output is the realized target at the chosen horizon.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from btc_platform.datasets.columns import HORIZONS, to_utc
from btc_platform.datasets.text_encoder import describe_market_state

SYSTEM_PROMPT = ("You are a quantitative analyst. Given the market state of an asset at a decision time, "
                 "predict its forward price and return. Answer with JSON only.")
# The guide's schema names where the table's differ.
INPUT_NAMES = {"close": "price_close"}
# The guide's technical, macro and sentiment fields, plus this platform's market structure.
GUIDE_INPUTS = (
    "close", "volume", "rsi_14", "macd", "macd_signal", "macd_histogram", "bb_upper", "bb_middle",
    "bb_lower", "sma_20", "sma_50", "sma_200", "ema_12", "ema_26", "volatility_30d", "volatility_60d",
    "volatility_90d", "momentum_5d", "momentum_10d", "momentum_30d", "atr_14", "adx_14",
    "sp500_close", "vix", "dxy", "us10y_yield", "us2y_yield", "gold_price", "oil_price", "cpi_yoy",
    "gdp_growth_qoq", "unemployment_rate", "fear_greed_index", "funding_rate", "perp_spot_basis",
)
ALPACA_COLUMNS = ["instruction", "input", "output"]
# bar_coverage: the share of the decision bar's minutes that arrived (partial bars have no volume features).
META_COLUMNS = ["asset_symbol", "asset_class", "symbol", "decision_at", "horizon", "bar_coverage"]


@dataclass(frozen=True)
class InstructionSpec:
    horizon: str = "90d"
    context_length: int = 7  # closes in the context window (the guide's example shows 7)
    context_step: pd.Timedelta = pd.Timedelta("1D")  # one close per day

    def __post_init__(self):
        if self.horizon not in HORIZONS:
            raise ValueError(f"horizon must be one of {list(HORIZONS)}, got {self.horizon!r}")
        if self.context_length < 1:
            raise ValueError("context_length must be >= 1")


def horizon_words(horizon: str) -> str:
    td = HORIZONS[horizon]
    return f"{td.days}-day" if td >= pd.Timedelta("2D") else f"{int(td / pd.Timedelta('1h'))}-hour"


def _sig(x, digits: int):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return float(f"{float(x):.{digits}g}")  # significant digits: prices span 1e-5 to 1e5


def input_columns(features: list[str]) -> list[str]:
    """The guide's input fields that this table carries (in the guide's order)."""
    return [c for c in GUIDE_INPUTS if c in features]


def context_closes(frame: pd.DataFrame, length: int, step: pd.Timedelta) -> list[list[float] | None]:
    """Per row: the closes at ts - (length-1)*step .. ts of its symbol (oldest first); None when any
    of them is absent from the table (a gap or the start of the history)."""
    out: list[list[float] | None] = [None] * len(frame)
    ts = to_utc(frame["ts"])
    for _, idx in frame.groupby("symbol", sort=False).indices.items():
        closes = pd.Series(frame["close"].to_numpy()[idx], index=pd.DatetimeIndex(ts.to_numpy()[idx]))
        closes = closes[~closes.index.duplicated()]
        stamps = pd.DatetimeIndex(ts.to_numpy()[idx])
        lagged = np.column_stack([closes.reindex(stamps - i * step).to_numpy()
                                  for i in range(length - 1, -1, -1)])
        for row, values in zip(idx, lagged):
            if not np.isnan(values).any():
                out[row] = [_sig(v, 10) for v in values]
    return out


def _output(row: dict, horizon: str) -> dict | None:
    ret = row.get(f"target_return_{horizon}")
    if ret is None or (isinstance(ret, float) and math.isnan(ret)):
        return None
    pct = row.get(f"target_return_pct_{horizon}")
    if pct is None or (isinstance(pct, float) and math.isnan(pct)):
        pct = math.expm1(ret) * 100
    price = row.get(f"target_price_{horizon}")
    if price is None or (isinstance(price, float) and math.isnan(price)):
        entry = row.get("target_entry_price")
        entry = row["close"] if entry is None or (isinstance(entry, float) and math.isnan(entry)) else entry
        price = entry * math.exp(ret)
    return {f"predicted_price_{horizon}": _sig(price, 10), f"predicted_return_{horizon}": round(float(ret), 6),
            f"predicted_return_pct_{horizon}": round(float(pct), 4)}


def build_samples(frame: pd.DataFrame, features: list[str], spec: InstructionSpec,
                  require_target: bool = True) -> pd.DataFrame:
    """One sample per row with the horizon's target (all rows when require_target=False).

    Columns: meta columns, `state_text`, `features` (dict), `context` (dict or None), `target` (dict
    or None). Samples are ordered by (decision_at, symbol).
    """
    frame = frame.sort_values(["ts", "symbol"], kind="mergesort").reset_index(drop=True)
    cols = input_columns(features)
    windows = context_closes(frame, spec.context_length, spec.context_step)
    decided = to_utc(frame["decision_at"]).dt.strftime("%Y-%m-%dT%H:%M:%SZ").tolist()
    samples = []
    for i, row in enumerate(frame.to_dict(orient="records")):
        target = _output(row, spec.horizon)
        if require_target and target is None:
            continue
        symbol = str(row["symbol"])
        inputs = {INPUT_NAMES.get(c, c): _sig(row.get(c), 6 if c != "close" else 10) for c in cols}
        context = None
        if windows[i] is not None:
            context = {"context_window": windows[i], "current_price": _sig(row["close"], 10),
                       **{k: inputs[k] for k in ("rsi_14", "macd", "volatility_30d", "sma_50") if k in inputs}}
        samples.append({
            "asset_symbol": str(row.get("asset_symbol") or symbol.split("-")[0]),
            "asset_class": str(row.get("asset_class") or "crypto"),
            "symbol": symbol,
            "decision_at": decided[i],
            "horizon": spec.horizon,
            "bar_coverage": _sig(row.get("bar_coverage"), 6),
            "state_text": describe_market_state(row),
            "features": inputs, "context": context, "target": target,
        })
    return pd.DataFrame(samples, columns=[*META_COLUMNS, "state_text", "features", "context", "target"])


def _instruction(s: dict, context: bool) -> str:
    what = "return" if context else "price and return"
    basis = "the historical price context" if context else \
        "the following technical, macroeconomic, sentiment and market-structure features"
    return (f"Predict the {horizon_words(s['horizon'])} forward {what} for {s['symbol']} as of "
            f"{s['decision_at']} given {basis}. Market state: {s['state_text']}.")


def alpaca_rows(samples: pd.DataFrame, variant: str = "features") -> pd.DataFrame:
    """Alpaca instruction/input/output rows (+ meta columns); variant "features" or "context_window"
    (samples without a complete context window are left out of the latter)."""
    if variant not in ("features", "context_window"):
        raise ValueError(f"unknown variant {variant!r}")
    rows = []
    for s in samples.to_dict(orient="records"):
        use_context = variant == "context_window"
        if use_context and s["context"] is None:
            continue
        output = s["target"]
        if use_context and output is not None:
            output = {k: v for k, v in output.items() if not k.startswith("predicted_price")}
        rows.append({"instruction": _instruction(s, use_context),
                     "input": json.dumps(s["context"] if use_context else s["features"]),
                     "output": json.dumps(output) if output is not None else None,
                     **{k: s[k] for k in META_COLUMNS}})
    return pd.DataFrame(rows, columns=[*ALPACA_COLUMNS, *META_COLUMNS])


def user_message(alpaca: dict) -> str:
    return f"{alpaca['instruction']}\n\nInput:\n{alpaca['input']}"


def chat_messages(alpaca: pd.DataFrame) -> list[dict]:
    """TRL conversational language modeling rows: {"messages": [system, user, assistant]}."""
    return [{"messages": [{"role": "system", "content": SYSTEM_PROMPT},
                          {"role": "user", "content": user_message(r)},
                          {"role": "assistant", "content": r["output"]}]}
            for r in alpaca.to_dict(orient="records")]


def prompt_completion(alpaca: pd.DataFrame) -> list[dict]:
    """TRL conversational prompt-completion rows: prompt [system, user], completion [assistant]."""
    return [{"prompt": [{"role": "system", "content": SYSTEM_PROMPT},
                        {"role": "user", "content": user_message(r)}],
             "completion": [{"role": "assistant", "content": r["output"]}]}
            for r in alpaca.to_dict(orient="records")]
