"""Promotion: the best version on validation, only when it beats every baseline there; never on test."""

import pytest

from btc_platform.evaluation.promotion import decide


def evaluation(name: str, val_sharpe: float, test_sharpe: float = 0.0, rmse: float = 0.9, bh: float = 0.5,
               guard: bool = True) -> dict:
    split = lambda sharpe: {"bt_sharpe": sharpe, "rmse": rmse, "zero_rmse": 1.0,  # noqa: E731
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
