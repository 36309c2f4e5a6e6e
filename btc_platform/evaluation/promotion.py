"""Who serves a target: the best model version on validation, only if it beats every baseline there.

`decide` is the whole rule, without side effects; the Dagster asset applies its decision (the champion
pointer, the MLflow alias, the history with the reason).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from btc_platform.evaluation.judge import beats_baselines, pick_champion


@dataclass
class Decision:
    action: str  # "promote", "keep", "demote" or "none"
    candidate: dict | None  # the best version on validation
    verdict: dict  # beats_baselines(candidate)
    reason: str
    demoted: dict | None = None  # the champion that loses its place, if any
    events: list[dict] = field(default_factory=list)


def _summary(e: dict) -> str:
    v = e["validation"]
    return (f"{e['model']} ({e['config_hash']}, dataset {e['dataset_version']}): validation Sharpe {v['bt_sharpe']:.3f}, "
            f"RMSE {v['rmse']:.6g} vs zero {v['zero_rmse']:.6g}")


def decide(evaluations: list[dict], current: dict | None) -> Decision:
    candidate = pick_champion([e for e in evaluations if e["leakage_guard"]["passed"]])
    if candidate is None:
        return Decision("none", None, {"passed": False, "problems": ["no evaluated model version without look-ahead"]},
                        "nothing to promote")
    verdict = beats_baselines(candidate)
    current_url = (current or {}).get("model_url")
    current_eval = next((e for e in evaluations if e["model_url"] == current_url), None)
    if verdict["passed"]:
        if current_url == candidate["model_url"]:
            return Decision("keep", candidate, verdict, f"champion stays: {_summary(candidate)}")
        reason = f"best on validation and beats every baseline: {_summary(candidate)}"
        events = [{"event": "promotion", "model": candidate["model"], "model_url": candidate["model_url"], "reason": reason}]
        if current:
            events.append({"event": "demotion", "model": current.get("model"), "model_url": current_url,
                           "reason": f"replaced by a better model on validation: {_summary(candidate)}"})
        return Decision("promote", candidate, verdict, reason, current, events)
    # The best candidate fails the check: nothing new is promoted. The sitting champion keeps its place
    # only while it still passes on its own evaluation.
    problems = "; ".join(verdict["problems"])
    if current and (current_eval is None or not beats_baselines(current_eval)["passed"]):
        own = beats_baselines(current_eval)["problems"] if current_eval else ["its evaluation is gone"]
        reason = f"no longer beats the baselines on validation: {'; '.join(own)}"
        events = [{"event": "demotion", "model": current.get("model"), "model_url": current_url, "reason": reason}]
        return Decision("demote", candidate, verdict, reason, current, events)
    if current:
        return Decision("keep", candidate, verdict, f"best candidate not promoted ({problems}); champion stays")
    return Decision("none", candidate, verdict, f"not promoted: {problems}")
