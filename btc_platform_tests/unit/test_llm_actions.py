"""The shared action decoder: dataset phrasings round-trip, short and JSON forms, rejections, rewards."""

import math
import subprocess
import sys

import pytest

from btc_platform.datasets.preferences import PreferenceSpec, action_text
from btc_platform.llm.actions import (Action, ActionDecodeError, decode_action, reward_for, scores_from_row,
                                      try_decode)

SPECS = [PreferenceSpec(), PreferenceSpec(limit_offsets_bps=(12.5, 40.0))]
ALL_ACTIONS = sorted({a for spec in SPECS for a in spec.actions()})


@pytest.mark.parametrize("action", ALL_ACTIONS)
@pytest.mark.parametrize("close", [42_000.0, 0.5123, 98_765.43])
def test_dataset_phrasings_round_trip(action, close):
    text = action_text(action, close)
    assert decode_action(text).name == action
    # as DPO rows write them (leading space), any case, with text after the decision
    assert decode_action(" " + text).name == action
    assert decode_action("\n  " + text.lower() + " Rationale: momentum is strong, sell-side thin.").name == action


@pytest.mark.parametrize("action", ALL_ACTIONS)
def test_names_round_trip(action):
    parsed = Action.from_name(action)
    assert parsed.name == action
    assert decode_action(action).name == action


def test_action_fields():
    assert Action.from_name("limit_sell_12.5bps") == Action("limit", "sell", 12.5)
    assert Action.from_name("buy") == Action("market", "buy")
    assert Action.from_name("hold") == Action("hold")
    assert Action("limit", "buy", 25).name == "limit_buy_25bps"
    for bad in ("short", "limit_buy", "limit_buy_0bps", "limit_hold_25bps"):
        with pytest.raises(ActionDecodeError):
            Action.from_name(bad)
    with pytest.raises(ValueError):
        Action("market", "buy", 25.0)


@pytest.mark.parametrize("text, name", [
    ("BUY", "buy"), ("sell", "sell"), ("HOLD", "hold"), ("Hold.", "hold"), ("**SELL**", "sell"),
    ("LIMIT BUY 25 bps", "limit_buy_25bps"), ("LIMIT SELL at 50bps", "limit_sell_50bps"),
    ("limit sell 12.5 bps above", "limit_sell_12.5bps"), ("limit_buy_25bps", "limit_buy_25bps"),
    ("Action: BUY", "buy"), ("BUY\nbecause the trend is up", "buy"),
    ('{"action": "BUY"}', "buy"), ('{"action": "hold"}', "hold"),
    ('{"action": "limit_buy", "offset_bps": 25}', "limit_buy_25bps"),
    ('{"action": "LIMIT SELL", "offset_bps": 50}', "limit_sell_50bps"),
    ('{"action": "limit_sell", "offset_bps": "12.5"}', "limit_sell_12.5bps"),
    ('{"action": "limit_buy_100bps"}', "limit_buy_100bps"),
    ('```json\n{"action": "LIMIT SELL", "offset_bps": 50}\n```', "limit_sell_50bps"),
    ('  ```json\n{"action": "sell", "why": "overbought"}\n```\nDone.', "sell"),
    ('{"action": "buy"} and some words after', "buy"),
])
def test_short_and_json_forms(text, name):
    assert decode_action(text).name == name
    assert try_decode(text) == (decode_action(text), None)


@pytest.mark.parametrize("text, reason", [
    ("", "empty"), ("   \n", "empty"), (None, "empty"),
    ("The market looks uncertain today.", "no action named"),
    ("42000", "no action named"), ("25 bps", "no action named"),
    ("buy or sell", "conflicting actions"), ("BUY, no wait, HOLD", "conflicting actions"),
    ("LIMIT BUY", "without an offset"), ("LIMIT SELL at 42,105.00", "without an offset"),
    ("LIMIT BUY -25 bps", "positive"), ("LIMIT BUY 0 bps", "positive"),
    ("LIMIT SELL 20000 bps", "absurd"),
    ("LIMIT BUY 25 bps or 50 bps", "conflicting offsets"),
    ("BUY 25 bps below", "offset of 25 bps given for a market action"),
    ("HOLD 10 bps", "given for a hold action"),
    ("Do not buy", "negated"),
    ("SELL limit at 50 bps", "'limit' not followed by buy or sell"),
    ("I think the market is weak. SELL.", "no action named"),
    ('{"action": buy}', "invalid JSON"), ('{"action": "buy"', "invalid JSON"),
    ('{"decision": "buy"}', "invalid JSON action"), ('[{"action": "buy"}]', "expected an object"),
    ('{"action": 3}', "invalid JSON action"),
    ('{"action": "limit_buy"}', "without an offset"),
    ('{"action": "limit_buy", "offset_bps": "lots"}', "not a number"),
    ('{"action": "limit_buy", "offset_bps": [25]}', "not a number"),
    ('{"action": "limit_buy", "offset_bps": -5}', "positive"),
    ('{"action": "buy", "offset_bps": 25}', "offset_bps given for a market action"),
    ('{"action": "limit_buy_25bps", "offset_bps": 50}', "conflicting offsets"),
    ('```json\n{"action": \n```', "invalid JSON"),
])
def test_rejections_say_why(text, reason):
    action, why = try_decode(text)
    assert action is None and reason in why
    with pytest.raises(ActionDecodeError) as info:
        decode_action(text)
    assert reason in info.value.reason and isinstance(info.value, ValueError)


def test_reward_for():
    scores = {"buy": 0.012, "sell": -0.014, "hold": 0.0, "limit_buy_25bps": 0.013,
              "limit_sell_12.5bps": float("nan")}
    dpo_chosen = " BUY at market (last close 42,000.00), close the position after 24 hours."
    assert reward_for(dpo_chosen, scores, -1.0) == 0.012
    assert reward_for(action_text("limit_buy_25bps", 42_000.0), scores, -1.0) == 0.013
    assert reward_for('{"action": "hold"}', scores, -1.0) == 0.0
    assert reward_for("buy or sell", scores, -1.0) == -1.0  # invalid
    assert reward_for("", scores, -0.5) == -0.5
    assert reward_for("LIMIT BUY 30 bps", scores, -1.0) == -1.0  # an offset the data never scored
    assert reward_for("limit_sell_12.5bps", scores, -1.0) == -1.0  # scored NaN
    # TRL passes conversational completions as messages
    assert reward_for([{"role": "assistant", "content": "SELL"}], scores, -1.0) == -0.014


def test_scores_from_row():
    row = {"prompt": "p", "close": 42_000.0, "score_buy": 0.01, "score_sell": -0.012, "score_hold": 0.0,
           "score_limit_buy_25bps": float("nan"), "score_limit_sell_12.5bps": None, "filled_limit_buy_25bps": False,
           "score_limit_sell_50bps": 0.004}
    scores = scores_from_row(row)
    assert scores == {"buy": 0.01, "sell": -0.012, "hold": 0.0, "limit_sell_50bps": 0.004}
    assert all(isinstance(v, float) and not math.isnan(v) for v in scores.values())
    assert reward_for(action_text("limit_sell_50bps", 100.0), scores, -1.0) == 0.004


def test_import_is_light():
    code = "import sys, btc_platform.llm.actions; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
