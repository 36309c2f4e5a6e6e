"""Text encoder, instruction samples, preference scoring and the TRL / decision-time checks."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from btc_platform.datasets import checks
from btc_platform.datasets.columns import drop_warmup, feature_columns, with_decision_at
from btc_platform.datasets.instructions import InstructionSpec, alpaca_rows, build_samples, chat_messages, prompt_completion
from btc_platform.datasets.preferences import PreferenceSpec, dpo_rows, score_candidates
from btc_platform.datasets.text_encoder import describe_market_state
from btc_platform_tests.synthetic_tables import training_table


@pytest.fixture(scope="module")
def frame():
    return drop_warmup(with_decision_at(training_table(days=20, seed=3)))[0]


def test_text_encoder_reads_like_the_plan():
    text = describe_market_state({"close": 103.1, "sma_50": 100.0, "rsi_14": 72.4, "macd": 2.0, "macd_signal": 1.0,
                                  "funding_rate": 0.0002, "funding_rate_mean_7d": 0.0001, "fear_greed_index": 74,
                                  "vix": float("nan"), "target_return_24h": 0.5})
    assert text == ("close 103.10; price 3.1% above SMA 50; RSI 72, overbought; MACD above signal; "
                    "funding positive and rising (0.0200% per period); Fear & Greed 74, greed")


def test_instruction_samples_use_decision_time_data_only(frame):
    spec = InstructionSpec(horizon="24h", context_length=3)
    features = feature_columns(frame)
    samples = build_samples(frame, features, spec)
    assert len(samples) == frame["target_return_24h"].notna().sum()
    result = checks.numbers_from_decision_time(
        frame, samples, lambda known: build_samples(known, features, spec, require_target=False),
        lambda a, b: all(a[c] == b[c] for c in ("state_text", "features", "context")), n=15)
    assert result["passed"] and result["checked"] == 15


def test_a_leaking_builder_is_caught(frame):
    spec = InstructionSpec(horizon="24h", context_length=3)
    features = feature_columns(frame)

    def peeking(table, require_target=True):  # its "RSI" is the next bar's close: look-ahead
        table = table.assign(rsi_14=table.groupby("symbol")["close"].shift(-1))
        return build_samples(table, features, spec, require_target=require_target)

    leaking = checks.numbers_from_decision_time(
        frame, peeking(frame), lambda known: peeking(known, require_target=False),
        lambda a, b: a["features"] == b["features"], n=5)
    assert not leaking["passed"] and len(leaking["mismatches"]) == 5


def test_alpaca_context_and_trl_rows(frame):
    samples = build_samples(frame, feature_columns(frame), InstructionSpec(horizon="24h", context_length=3))
    alpaca = alpaca_rows(samples)
    first = alpaca.iloc[0]
    payload, output = json.loads(first["input"]), json.loads(first["output"])
    src = frame[frame["symbol"] == first["symbol"]]
    row = src[src["decision_at"] == pd.Timestamp(first["decision_at"])].iloc[0]
    assert payload["price_close"] == pytest.approx(row["close"]) and payload["rsi_14"] == pytest.approx(row["rsi_14"], rel=1e-5)
    assert output["predicted_return_24h"] == pytest.approx(row["target_return_24h"], abs=1e-6)
    assert output["predicted_price_24h"] == pytest.approx(row["close"] * math.exp(row["target_return_24h"]), rel=1e-8)
    context = alpaca_rows(samples, "context_window")
    window = json.loads(context.iloc[0]["input"])["context_window"]
    assert len(window) == 3 and window[-1] == json.loads(context.iloc[0]["input"])["current_price"]
    assert checks.trl_format(chat_messages(alpaca), "language_modeling")["passed"]
    assert checks.trl_format(prompt_completion(alpaca), "prompt_completion")["format"] == ["conversational"]
    assert not checks.trl_format([{"prompt": "x", "completion": 3}], "prompt_completion")["passed"]


def test_candidates_are_scored_by_what_happened():
    row = pd.DataFrame({"close": [100.0], "target_entry_price": [100.0], "target_return_24h": [math.log(1.01)],
                        "target_high_24h": [100.4], "target_low_24h": [99.3]})
    spec = PreferenceSpec(taker_fee_bps=10, maker_fee_bps=2, limit_offsets_bps=(50.0, 100.0), slippage_bps=1)
    s = score_candidates(row, spec).iloc[0]
    # Every fill pays: a market round trip two taker fills (10 bps fee + 1 bp slippage each) ...
    assert s["score_buy"] == pytest.approx(math.log(1.01) - 2 * 0.0011)
    assert s["score_sell"] == pytest.approx(-math.log(1.01) - 2 * 0.0011)
    assert s["score_hold"] == 0
    assert s["filled_limit_buy_50bps"] and not s["filled_limit_buy_100bps"]  # low 99.3: 99.5 fills, 99.0 not
    # ... a filled limit its maker entry (2 bps) and its market exit (11 bps).
    assert s["score_limit_buy_50bps"] == pytest.approx(math.log(101 / 99.5) - 0.0002 - 0.0011)
    assert s["score_limit_buy_100bps"] == 0 and not s["filled_limit_sell_50bps"]  # high 100.4 < 100.5
    pairs = dpo_rows(row.assign(symbol="BTC-USD", decision_at=pd.Timestamp("2024-01-01", tz="UTC"), rsi_14=50.0), spec)
    assert pairs.iloc[0]["chosen_action"] == "limit_buy_50bps" and pairs.iloc[0]["rejected_action"] == "sell"
    assert pairs.iloc[0]["score_margin"] == pytest.approx(s["score_limit_buy_50bps"] - s["score_sell"])


def test_ties_are_skipped():
    flat = pd.DataFrame({"symbol": ["X-USD"], "decision_at": [pd.Timestamp("2024-01-01", tz="UTC")], "close": [1.0],
                         "target_entry_price": [1.0], "target_return_24h": [0.0], "target_high_24h": [1.0],
                         "target_low_24h": [1.0]})
    spec = PreferenceSpec(taker_fee_bps=0, maker_fee_bps=0, limit_offsets_bps=(10.0,), slippage_bps=0)
    assert dpo_rows(flat, spec).empty
    # Flat market with fees: hold and the unfilled limits all score 0 (ties, skipped); only the
    # market orders, which paid two fills of fee and slippage, are worse than the best.
    each = dpo_rows(flat, PreferenceSpec(pairing="best_vs_each"))
    assert each["chosen_action"].tolist() == ["hold", "hold"]
    assert sorted(each["rejected_action"]) == ["buy", "sell"]
    assert each["score_margin"].tolist() == pytest.approx([2 * 0.0012, 2 * 0.0012])
    up = dpo_rows(flat.assign(target_return_24h=np.log(1.02)), PreferenceSpec(pairing="best_vs_each"))
    assert len(up) == len(PreferenceSpec().actions()) - 1 and set(up["chosen_action"]) == {"buy"}
