"""Promotion: the best version on validation, only when it beats every baseline there; never on test."""

import pytest

from btc_platform.evaluation.judge import MIN_VALIDATION_BARS
from btc_platform.evaluation.promotion import LLM, decide


def evaluation(name: str, val_sharpe: float, test_sharpe: float = 0.0, rmse: float = 0.9, bh: float = 0.5,
               guard: bool = True, bars: int = 500) -> dict:
    split = lambda sharpe: {"bt_sharpe": sharpe, "rmse": rmse, "zero_rmse": 1.0, "bars": bars,  # noqa: E731
                            "buy_and_hold_bt_sharpe": bh, "flat_bt_sharpe": 0.0}
    return {"model": name, "model_url": f"/models/{name}", "config_hash": "c", "dataset_version": "d",
            "validation": split(val_sharpe), "test": split(test_sharpe), "leakage_guard": {"passed": guard}}


def test_the_best_on_validation_is_promoted_not_the_best_on_test():
    a, b = evaluation("a", val_sharpe=2.0, test_sharpe=0.1), evaluation("b", val_sharpe=1.0, test_sharpe=5.0)
    decision = decide([a, b], current=None)
    assert decision.action == "promote" and decision.candidate is a
    assert [e["event"] for e in decision.events] == ["promotion"]


def test_a_worse_model_is_never_promoted_over_the_champion():
    champion, worse = evaluation("a", val_sharpe=2.0), evaluation("b", val_sharpe=1.5, test_sharpe=9.0)
    decision = decide([champion, worse], current={"model": "a", "model_url": "/models/a"})
    assert decision.action == "keep" and decision.candidate is champion and not decision.events


def test_a_better_model_replaces_the_champion_and_the_demotion_says_why():
    old, better = evaluation("a", val_sharpe=1.0), evaluation("b", val_sharpe=2.0)
    decision = decide([old, better], current={"model": "a", "model_url": "/models/a"})
    assert decision.action == "promote" and decision.candidate is better
    demotion = decision.events[1]
    assert demotion["event"] == "demotion" and demotion["model"] == "a" and "replaced by a better model" in demotion["reason"]


@pytest.mark.parametrize("kwargs, problem", [
    ({"val_sharpe": 0.4, "bh": 0.5}, "does not beat buy_and_hold"),
    ({"val_sharpe": -0.1, "bh": -0.5}, "does not beat flat"),
    ({"val_sharpe": 1.0, "rmse": 1.1}, "does not beat the zero forecast"),
])
def test_nothing_is_promoted_unless_every_baseline_is_beaten(kwargs, problem):
    decision = decide([evaluation("a", **kwargs)], current=None)
    assert decision.action == "none" and not decision.verdict["passed"]
    assert any(problem in p for p in decision.verdict["problems"])


def test_a_champion_that_stops_beating_the_baselines_is_demoted_with_the_reason():
    fading = evaluation("a", val_sharpe=0.2, bh=0.5)
    decision = decide([fading], current={"model": "a", "model_url": "/models/a"})
    assert decision.action == "demote"
    assert "no longer beats the baselines" in decision.reason and "buy_and_hold" in decision.reason


def test_a_version_that_looks_ahead_is_never_a_candidate():
    cheat, honest = evaluation("cheat", val_sharpe=9.0, guard=False), evaluation("honest", val_sharpe=1.0)
    decision = decide([cheat, honest], current=None)
    assert decision.candidate is honest and decision.action == "promote"


def test_a_validation_window_too_short_to_judge_promotes_nothing():
    """The sandbox demo once promoted a Sharpe of 27.5 over 90 validation bars that lost on test."""
    lucky = evaluation("a", val_sharpe=27.5, test_sharpe=-2.69, bars=90)
    decision = decide([lucky], current=None)
    assert decision.action == "none"
    assert any("90 bars is too short" in p and str(MIN_VALIDATION_BARS) in p for p in decision.verdict["problems"])
    assert decide([evaluation("a", val_sharpe=27.5, bars=MIN_VALIDATION_BARS)], current=None).action == "promote"


def llm_evaluation(name: str, reward: float, invalid: float = 0.0, n: int = 64, best_fixed: float = 0.001,
                   test_reward: float = 0.0) -> dict:
    split = lambda r: {"n": n, "mean_reward": r, "invalid_rate": invalid, "hold_mean_reward": 0.0,  # noqa: E731
                       "always_buy_mean_reward": -0.002, "best_fixed_mean_reward": best_fixed, "oracle_mean_reward": 0.05}
    return {"model": name, "model_url": f"/models/{name}/config=abc", "validation": split(reward), "test": split(test_reward)}


def test_the_llm_champion_is_the_best_mean_reward_on_validation_that_beats_every_fixed_action():
    sft, dpo = llm_evaluation("sft", 0.004, test_reward=0.03), llm_evaluation("dpo", 0.006, test_reward=-0.01)
    decision = decide([sft, dpo], current=None, rule=LLM)
    assert decision.action == "promote" and decision.candidate is dpo and "mean reward 0.00600" in decision.reason


@pytest.mark.parametrize("kwargs, problem", [
    ({"reward": 0.0009}, "does not beat best_fixed"),
    ({"reward": -0.001, "best_fixed": -0.01}, "does not beat hold"),
    ({"reward": 0.01, "invalid": 0.5}, "invalid-answer rate 50.0%"),
    ({"reward": 0.01, "n": 12}, "12 validation prompts are too few"),
])
def test_an_llm_that_does_not_beat_the_fixed_actions_is_not_promoted(kwargs, problem):
    decision = decide([llm_evaluation("grpo", **kwargs)], current=None, rule=LLM)
    assert decision.action == "none" and any(problem in p for p in decision.verdict["problems"]), decision.verdict
