"""Preference data for trading decisions, scored by what really happened afterwards.

Candidates per market state: market buy, market sell (short), hold, and limit buys/sells at several
offsets from the decision-time close. Each is scored by its realized log return over 24h net of costs,
charged on every fill, entry and exit alike (the same convention as the evaluation's backtest): a market
order fills at the entry price (`target_entry_price`) and exits at market 24h later, paying the taker fee
plus slippage twice; a limit order fills only if the next 24 bars traded through it (`target_low_24h` /
`target_high_24h`), earning its price improvement and paying the maker fee on entry, then the taker fee
plus slippage on its market exit; an unfilled limit and a hold score 0. DPO rows pair the best with the worst (or with each worse)
candidate, ties skipped; GRPO/DAPO rows carry the prompt and the reward columns instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from btc_platform.datasets.text_encoder import describe_market_state

HORIZON = "24h"
REALIZED_HORIZONS = ("1h", "24h", "3d", "5d")
ACTION_SYSTEM = ("You are a crypto trading agent. Given the market state, choose one action for the "
                 "next 24 hours: BUY or SELL at market, HOLD, or a LIMIT BUY/SELL at an offset in bps.")


@dataclass(frozen=True)
class PreferenceSpec:
    taker_fee_bps: float = 10.0
    maker_fee_bps: float = 2.0
    limit_offsets_bps: tuple[float, ...] = (25.0, 50.0, 100.0)
    pairing: str = "best_vs_worst"  # or "best_vs_each"
    min_margin: float = 1e-9  # score differences below this are ties
    slippage_bps: float = 2.0  # per market fill, as the backtest charges it

    def market_fill(self) -> float:
        """Cost of one market (taker) fill as a fraction: fee plus slippage."""
        return (self.taker_fee_bps + self.slippage_bps) / 1e4

    def fees_text(self) -> str:
        return (f"costs per fill: market {self.taker_fee_bps:g} bps taker fee + {self.slippage_bps:g} bps slippage, "
                f"limit entry {self.maker_fee_bps:g} bps maker fee; a market round trip pays two market fills, a "
                "filled limit its maker entry and a market exit")

    def __post_init__(self):
        if self.pairing not in ("best_vs_worst", "best_vs_each"):
            raise ValueError(f"pairing must be best_vs_worst or best_vs_each, got {self.pairing!r}")

    def actions(self) -> list[str]:
        limits = [f"limit_{side}_{int(o) if float(o).is_integer() else o}bps"
                  for side in ("buy", "sell") for o in self.limit_offsets_bps]
        return ["buy", "sell", "hold", *limits]


def _offset(action: str) -> float:
    return float(action.rsplit("_", 1)[1].removesuffix("bps"))


def action_text(action: str, close: float) -> str:
    """The decision as the model should write it; prices from the decision-time close only."""
    if action == "hold":
        return "HOLD: no trade for the next 24 hours."
    if action in ("buy", "sell"):
        return f"{action.upper()} at market (last close {close:,.2f}), close the position after 24 hours."
    side, bps = action.split("_")[1], _offset(action)
    price = close * (1 - bps / 1e4) if side == "buy" else close * (1 + bps / 1e4)
    where = "below" if side == "buy" else "above"
    return (f"LIMIT {side.upper()} at {price:,.2f}, {bps:g} bps {where} the last close {close:,.2f}; "
            "cancel if unfilled, close after 24 hours.")


def score_candidates(frame: pd.DataFrame, spec: PreferenceSpec) -> pd.DataFrame:
    """Realized score of every candidate (columns `score_<action>`) and fills (`filled_<limit>`).

    Rows lacking the 24h return, the entry price or the 24h range score NaN throughout.
    """
    close = frame["close"].to_numpy(dtype=float)
    entry = frame["target_entry_price"].to_numpy(dtype=float)
    ret = frame[f"target_return_{HORIZON}"].to_numpy(dtype=float)
    high = frame[f"target_high_{HORIZON}"].to_numpy(dtype=float)
    low = frame[f"target_low_{HORIZON}"].to_numpy(dtype=float)
    exit_price = entry * np.exp(ret)
    known = ~(np.isnan(entry) | np.isnan(ret) | np.isnan(high) | np.isnan(low))
    market, maker = spec.market_fill(), spec.maker_fee_bps / 1e4
    # Every fill pays: entry and exit of a market round trip, a limit's maker entry and its market exit.
    out = {"score_buy": ret - 2 * market, "score_sell": -ret - 2 * market, "score_hold": np.zeros(len(frame))}
    for action in spec.actions()[3:]:
        side, k = action.split("_")[1], _offset(action) / 1e4
        limit = close * (1 - k) if side == "buy" else close * (1 + k)
        filled = low <= limit if side == "buy" else high >= limit
        gain = np.log(exit_price / limit) if side == "buy" else np.log(limit / exit_price)
        out[f"score_{action}"] = np.where(filled, gain - maker - market, 0.0)
        out[f"filled_{action}"] = np.where(known, filled, False)
    scores = pd.DataFrame(out, index=frame.index)
    score_cols = [c for c in scores.columns if c.startswith("score_")]
    scores.loc[~known, score_cols] = np.nan
    return scores


def prompt_text(row: dict) -> str:
    when = pd.Timestamp(row["decision_at"]).tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC")
    return (f"{ACTION_SYSTEM}\n\nMarket state for {row['symbol']} at {when}: "
            f"{describe_market_state(row)}.\nAction:")


def dpo_rows(frame: pd.DataFrame, spec: PreferenceSpec) -> pd.DataFrame:
    """TRL standard preference rows: prompt, chosen, rejected, plus reward, score_margin,
    chosen/rejected actions and scores, every candidate's score (JSON), symbol and decision time."""
    scores = score_candidates(frame, spec)
    actions = spec.actions()
    rows = []
    for (_, row), (_, sc) in zip(frame.iterrows(), scores.iterrows()):
        values = {a: float(sc[f"score_{a}"]) for a in actions}
        if any(np.isnan(v) for v in values.values()):
            continue
        ranked = sorted(actions, key=lambda a: (-values[a], actions.index(a)))
        best = ranked[0]
        worse = [ranked[-1]] if spec.pairing == "best_vs_worst" else ranked[1:]
        record = row.to_dict()
        prompt = prompt_text(record)
        for rejected in worse:
            margin = values[best] - values[rejected]
            if margin < spec.min_margin:
                continue  # a tie teaches nothing
            rows.append({
                "prompt": prompt, "chosen": " " + action_text(best, record["close"]),
                "rejected": " " + action_text(rejected, record["close"]),
                "reward": values[best], "score_margin": margin,
                "chosen_action": best, "rejected_action": rejected,
                "chosen_score": values[best], "rejected_score": values[rejected],
                "candidate_scores": json.dumps({a: round(v, 8) for a, v in values.items()}),
                "symbol": str(record["symbol"]), "decision_at": _iso(record["decision_at"]),
                "bar_coverage": _coverage(record),
            })
    return pd.DataFrame(rows)


def grpo_rows(frame: pd.DataFrame, spec: PreferenceSpec) -> pd.DataFrame:
    """TRL standard prompt-only rows with reward columns: realized log returns per horizon,
    entry price, the 24h range, fills and every candidate's score (the reward function maps a
    generated action to its `score_<action>`)."""
    scores = score_candidates(frame, spec)
    keep = scores["score_buy"].notna().to_numpy()
    out = pd.DataFrame({"prompt": [prompt_text(r) for r in frame[keep].to_dict(orient="records")]})
    out["symbol"] = frame.loc[keep, "symbol"].astype(str).to_numpy()
    out["decision_at"] = [_iso(t) for t in frame.loc[keep, "decision_at"]]
    if "bar_coverage" in frame:
        out["bar_coverage"] = pd.to_numeric(frame.loc[keep, "bar_coverage"], errors="coerce").to_numpy(dtype=float)
    out["close"] = frame.loc[keep, "close"].to_numpy(dtype=float)
    out["entry_price"] = frame.loc[keep, "target_entry_price"].to_numpy(dtype=float)
    for h in REALIZED_HORIZONS:
        col = f"target_return_{h}"
        if col in frame:  # the caller keeps only horizons within its purge
            out[f"realized_return_{h}"] = frame.loc[keep, col].to_numpy(dtype=float)
    out["high_24h"] = frame.loc[keep, "target_high_24h"].to_numpy(dtype=float)
    out["low_24h"] = frame.loc[keep, "target_low_24h"].to_numpy(dtype=float)
    for col in scores.columns:
        out[col] = scores.loc[keep, col].to_numpy()
    out["taker_fee_bps"], out["maker_fee_bps"] = spec.taker_fee_bps, spec.maker_fee_bps
    out["slippage_bps"] = spec.slippage_bps
    return out


def _iso(t) -> str:
    return pd.Timestamp(t).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _coverage(record: dict) -> float | None:
    """The decision bar's minute coverage, None where the table does not say."""
    value = pd.to_numeric(record.get("bar_coverage"), errors="coerce")
    return None if pd.isna(value) else float(value)
