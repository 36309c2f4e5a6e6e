"""Who serves a target: the best model version on validation, only if it beats every baseline there.

`decide` is the whole rule, without side effects; the Dagster asset applies its decision (the champion
pointer, the MLflow alias, the history with the reason). A `Rule` says, per kind of target, which
versions may compete, how they rank on validation and what "beats every baseline" means: numeric
forecasts (`NUMERIC`: backtest Sharpe, RMSE, the leakage guard) or LLM actions (`LLM`: mean realized reward
of the decoded actions against HOLD, always BUY and the best fixed action).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from btc_platform.evaluation.judge import beats_baselines, llm_beats_baselines


@dataclass(frozen=True)
class Rule:
    verdict: Callable[[dict], dict]  # {"passed": bool, "problems": [...]}, on validation only
    rank: Callable[[dict], tuple]  # higher is better, on validation only
    summary: Callable[[dict], str]
    eligible: Callable[[dict], bool] = lambda e: True


def _finite(x) -> float:
    return x if isinstance(x, (int, float)) and x == x else -math.inf


NUMERIC = Rule(
    verdict=beats_baselines,
    rank=lambda e: (_finite(e["validation"]["bt_sharpe"]), -e["validation"]["rmse"]),
    summary=lambda e: (f"{e['model']} ({e['config_hash']}, dataset {e['dataset_version']}): validation Sharpe "
                       f"{e['validation']['bt_sharpe']:.3f}, RMSE {e['validation']['rmse']:.6g} vs zero "
                       f"{e['validation']['zero_rmse']:.6g}"),
    eligible=lambda e: bool(e["leakage_guard"]["passed"]),
)

LLM = Rule(
    verdict=llm_beats_baselines,
    rank=lambda e: (_finite(e["validation"]["mean_reward"]), -e["validation"]["invalid_rate"]),
    summary=lambda e: (f"{e['model']} ({e['model_url'].rstrip('/').rsplit('/', 1)[-1]}): validation mean reward "
                       f"{e['validation']['mean_reward']:.5f}, invalid {e['validation']['invalid_rate']:.1%}"),
)


@dataclass
class Decision:
    action: str  # "promote", "keep", "demote" or "none"
    candidate: dict | None  # the best version on validation
    verdict: dict  # rule.verdict(candidate)
    reason: str
    demoted: dict | None = None  # the champion that loses its place, if any
    events: list[dict] = field(default_factory=list)


def decide(evaluations: list[dict], current: dict | None, rule: Rule = NUMERIC) -> Decision:
    eligible = [e for e in evaluations if rule.eligible(e)]
    if not eligible:
        return Decision("none", None, {"passed": False, "problems": ["no evaluated model version may compete"]},
                        "nothing to promote")
    candidate = max(eligible, key=rule.rank)
    verdict = rule.verdict(candidate)
    current_url = (current or {}).get("model_url")
    current_eval = next((e for e in evaluations if e["model_url"] == current_url), None)
    if verdict["passed"]:
        if current_url == candidate["model_url"]:
            return Decision("keep", candidate, verdict, f"champion stays: {rule.summary(candidate)}")
        reason = f"best on validation and beats every baseline: {rule.summary(candidate)}"
        events = [{"event": "promotion", "model": candidate["model"], "model_url": candidate["model_url"], "reason": reason}]
        if current:
            events.append({"event": "demotion", "model": current.get("model"), "model_url": current_url,
                           "reason": f"replaced by a better model on validation: {rule.summary(candidate)}"})
        return Decision("promote", candidate, verdict, reason, current, events)
    # The best candidate fails the check: nothing new is promoted. The sitting champion keeps its place
    # only while it still passes on its own evaluation.
    problems = "; ".join(verdict["problems"])
    if current and (current_eval is None or not rule.verdict(current_eval)["passed"]):
        own = rule.verdict(current_eval)["problems"] if current_eval else ["its evaluation is gone"]
        reason = f"no longer beats the baselines on validation: {'; '.join(own)}"
        events = [{"event": "demotion", "model": current.get("model"), "model_url": current_url, "reason": reason}]
        return Decision("demote", candidate, verdict, reason, current, events)
    if current:
        return Decision("keep", candidate, verdict, f"best candidate not promoted ({problems}); champion stays")
    return Decision("none", candidate, verdict, f"not promoted: {problems}")
