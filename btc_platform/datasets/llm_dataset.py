"""Instruction (SFT) and preference (DPO, GRPO/DAPO) dataset builds for LLM fine-tuning.

Both split the table walk-forward with a purge of at least their horizon, build every file per
split, and check that each prompt's numbers come from data known at its decision time by rebuilding
samples from the table cut off there.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from btc_platform.datasets import checks
from btc_platform.datasets.build import Build, new_build
from btc_platform.datasets.columns import HORIZONS, drop_warmup, feature_columns, targets_within, with_decision_at
from btc_platform.datasets.instructions import (InstructionSpec, alpaca_rows, build_samples, chat_messages,
                                                prompt_completion)
from btc_platform.datasets.manifest import build_version, frame_summary
from btc_platform.datasets.preferences import PreferenceSpec, action_text, dpo_rows, grpo_rows, prompt_text
from btc_platform.datasets.walk_forward import SPLIT_NAMES, WalkForwardSpec, verify_purged, walk_forward


@dataclass(frozen=True)
class LLMSplitSpec:
    embargo: str = "24h"
    validation_fraction: float = 0.15
    test_fraction: float = 0.15
    max_partial_bar_share: float = checks.MAX_PARTIAL_BAR_SHARE

    def walk_forward(self, purge: pd.Timedelta) -> WalkForwardSpec:
        return WalkForwardSpec(purge=purge, embargo=pd.Timedelta(self.embargo),
                               validation_fraction=self.validation_fraction, test_fraction=self.test_fraction)


def records(frame: pd.DataFrame) -> list[dict]:
    """JSON-ready rows: NaN becomes null (json.dumps would write NaN, which is not JSON)."""
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def _iso(series: pd.Series) -> pd.Series:
    return series.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _split_of(frame: pd.DataFrame, wf: WalkForwardSpec) -> tuple[dict[str, set], list[str], dict]:
    """(symbol, decision_at ISO) keys per split of the rows in `frame`, notes when it cannot split,
    and the purge verification of the split."""
    try:
        parts = walk_forward(frame, wf)[-1]
    except ValueError as exc:
        return {s: set() for s in SPLIT_NAMES}, [f"no split: {exc}"], {"passed": False, "problems": [str(exc)]}
    keys = {s: set(zip(p["symbol"].astype(str), _iso(p["decision_at"]))) for s, p in parts.items()}
    return keys, [], {**verify_purged(parts, wf.purge, wf.embargo), "purge": str(wf.purge), "embargo": str(wf.embargo)}


def _assign(rows: pd.DataFrame, keys: dict[str, set]) -> dict[str, pd.DataFrame]:
    pairs = list(zip(rows["symbol"], rows["decision_at"])) if len(rows) else []
    return {s: rows[[p in keys[s] for p in pairs]].reset_index(drop=True) if len(rows) else rows
            for s in SPLIT_NAMES}


def _hf_check(files: dict[str, object], stem: str, builder: str, columns: list[str]) -> dict:
    """Write one file set to a temp folder and load it with HF datasets."""
    with tempfile.TemporaryDirectory() as tmp:
        local, rows = {}, {}
        for s in SPLIT_NAMES:
            name = f"{stem}/{s}.{'jsonl' if builder == 'json' else builder}"
            content = files[name]
            if not len(content):
                continue
            path = Path(tmp) / name.replace("/", "_")
            if builder == "json":
                path.write_text("".join(json.dumps(r) + "\n" for r in content))
            elif builder == "csv":
                content.to_csv(path, index=False)
            else:
                content.to_parquet(path, index=False)
            local[s], rows[s] = path, len(content)
        if not local:
            return {"passed": False, "problems": ["no rows to load"]}
        return checks.hf_loadable(local, builder, rows, columns)


# ---- instructions ---------------------------------------------------------------------------

def build_instruction_dataset(table: pd.DataFrame, spec: InstructionSpec, split: LLMSplitSpec, *,
                              dataset: str, source_name: str, source_hash: str) -> Build:
    frame, warmup = drop_warmup(with_decision_at(table))
    features = feature_columns(frame)
    horizon = HORIZONS[spec.horizon]
    config = {**asdict(spec), "context_step": str(spec.context_step), **asdict(split), "features": features}
    build = new_build(dataset, build_version(source_hash, config),
                      f"Alpaca instruction data (90-day prediction guide) for the {spec.horizon} horizon from "
                      f"`{source_name}`: features and context-window variants, chat messages and TRL "
                      "prompt/completion rows.", config, table, source_name, source_hash)
    samples = build_samples(frame, features, spec)
    target_col = f"target_return_{spec.horizon}"
    has_target = frame[frame[target_col].notna()] if target_col in frame else frame.iloc[0:0]
    keys, notes, purged = _split_of(has_target, split.walk_forward(horizon))
    build.notes += notes
    if samples.empty:
        span = frame["ts"].max() - frame["ts"].min() if len(frame) else pd.Timedelta(0)
        build.notes.append(f"horizon {spec.horizon} has no rows yet: its target needs {horizon} of data after a "
                           f"decision and the table spans {span}; build a shorter horizon (24h, 5d) meanwhile.")
    alpaca = alpaca_rows(samples, "features")
    context = alpaca_rows(samples, "context_window")
    for s, part in _assign(alpaca, keys).items():
        build.files[f"alpaca/{s}.jsonl"] = records(part)
        build.files[f"alpaca/{s}.csv"] = part
        build.files[f"messages/{s}.jsonl"] = chat_messages(part)
        build.files[f"prompt_completion/{s}.jsonl"] = prompt_completion(part)
        build.splits[s] = {"rows": int(len(part))}
    for s, part in _assign(context, keys).items():
        build.files[f"context_window/{s}.jsonl"] = records(part)
        build.files[f"context_window/{s}.csv"] = part
        build.splits[f"context_window_{s}"] = {"rows": int(len(part))}
    build.extra.update(horizon=spec.horizon, rows=int(sum(len(_assign(alpaca, keys)[s]) for s in SPLIT_NAMES)),
                       warmup_rows=warmup, features=features)
    if len(alpaca):
        build.examples = {"alpaca": alpaca.iloc[0].to_dict(),
                          "messages": chat_messages(alpaca.head(1))[0],
                          "prompt_completion": prompt_completion(alpaca.head(1))[0]}
        if len(context):
            build.examples["context_window"] = context.iloc[0].to_dict()
    build.checks = {**instruction_checks(frame, samples, features, spec, build.files), "splits_purged": purged,
                    "partial_bars": checks.partial_bars(has_target, split.max_partial_bar_share)}
    return build


def instruction_checks(frame: pd.DataFrame, samples: pd.DataFrame, features: list[str], spec: InstructionSpec,
                       files: dict) -> dict[str, dict]:
    lookback = spec.context_length * spec.context_step + pd.Timedelta("1D")

    def rebuild(known: pd.DataFrame) -> pd.DataFrame:
        return build_samples(known, features, spec, require_target=False)

    def same(sample: dict, again: dict) -> bool:
        return all(sample[c] == again[c] for c in ("state_text", "features", "context"))

    records = lambda stem: [r for s in SPLIT_NAMES for r in files[f"{stem}/{s}.jsonl"]]  # noqa: E731
    return {
        "numbers_from_decision_time": checks.numbers_from_decision_time(frame, samples, rebuild, same, lookback=lookback)
        if len(samples) else {"passed": False, "problems": ["no samples"]},
        "hf_loadable": _all_passed({
            "alpaca_json": _hf_check(files, "alpaca", "json", ["instruction", "input", "output"]),
            "alpaca_csv": _hf_check(files, "alpaca", "csv", ["instruction", "input", "output"]),
            "messages": _hf_check(files, "messages", "json", ["messages"]),
            "prompt_completion": _hf_check(files, "prompt_completion", "json", ["prompt", "completion"]),
        }),
        "trl_format": _all_passed({
            "messages": checks.trl_format(records("messages"), "language_modeling"),
            "prompt_completion": checks.trl_format(records("prompt_completion"), "prompt_completion"),
        }),
    }


def _all_passed(parts: dict[str, dict]) -> dict:
    return {"passed": all(p["passed"] for p in parts.values()), **parts}


# ---- preferences ----------------------------------------------------------------------------

def build_preference_dataset(table: pd.DataFrame, spec: PreferenceSpec, split: LLMSplitSpec, purge: str, *,
                             dataset: str, source_name: str, source_hash: str) -> Build:
    purge_td = pd.Timedelta(purge)
    if purge_td < HORIZONS["24h"]:
        raise ValueError("the preference data is scored over 24h: purge must be >= 24h")
    frame, warmup = drop_warmup(with_decision_at(table))
    # Reward columns beyond the purge would leak across splits: only horizons within it are kept.
    frame = frame.drop(columns=[c for c in frame if c.startswith("target_return_") and c not in targets_within(frame, purge_td)])
    config = {**asdict(spec), **asdict(split), "purge": purge}
    build = new_build(dataset, build_version(source_hash, config),
                      f"Trading preference data from `{source_name}`: DPO prompt/chosen/rejected rows with rewards "
                      "and prompt-only GRPO/DAPO rows with reward columns, scored by realized 24h outcomes.",
                      config, table, source_name, source_hash)
    needed = ["target_entry_price", "target_return_24h", "target_high_24h", "target_low_24h"]
    absent = [c for c in needed if c not in frame]
    if absent:
        raise ValueError(f"{source_name} lacks {absent}: preference rows need the 24h outcome columns")
    scored = frame.dropna(subset=needed).reset_index(drop=True)
    keys, notes, purged = _split_of(scored, split.walk_forward(purge_td))
    build.notes += notes
    dpo, grpo = dpo_rows(scored, spec), grpo_rows(scored, spec)
    for s in SPLIT_NAMES:
        d, g = _assign(dpo, keys)[s], _assign(grpo, keys)[s]
        build.files[f"dpo/{s}.jsonl"] = records(d)
        build.files[f"dpo/{s}.parquet"] = d
        build.files[f"grpo/{s}.jsonl"] = records(g)
        build.files[f"grpo/{s}.parquet"] = g
        build.splits[f"dpo_{s}"] = {"rows": int(len(d)), **({"chosen": d["chosen_action"].value_counts().to_dict()} if len(d) else {})}
        build.splits[f"grpo_{s}"] = frame_summary(scored[[k in keys[s] for k in zip(scored["symbol"].astype(str), _iso(scored["decision_at"]))]])
    scores = grpo[[f"score_{a}" for a in spec.actions()]]
    ties = int((scores.max(axis=1) - scores.min(axis=1) < spec.min_margin).sum()) if len(grpo) else 0
    build.extra.update(warmup_rows=warmup, actions=spec.actions(), ties_skipped=ties, costs=spec.fees_text())
    build.notes.append(f"Scores are realized 24h log returns net of {spec.fees_text()}.")
    if len(dpo):
        build.examples = {"dpo": dpo.iloc[0].to_dict(), "grpo": grpo.iloc[0].to_dict()}
    build.checks = {**preference_checks(scored, dpo, grpo, build.files, spec), "splits_purged": purged,
                    "partial_bars": checks.partial_bars(scored, split.max_partial_bar_share)}
    return build


def preference_checks(frame: pd.DataFrame, dpo: pd.DataFrame, grpo: pd.DataFrame, files: dict,
                      spec: PreferenceSpec) -> dict[str, dict]:
    def rebuild(known: pd.DataFrame) -> pd.DataFrame:
        rows = known.to_dict(orient="records")
        return pd.DataFrame({"decision_at": [_iso(pd.Series([r["decision_at"]])).iloc[0] for r in rows],
                             "prompt": [prompt_text(r) for r in rows], "close": [r["close"] for r in rows]})

    def same(sample: dict, again: dict) -> bool:
        candidates = {" " + action_text(a, again["close"]) for a in spec.actions()}
        texts = [sample[c] for c in ("chosen", "rejected") if c in sample]
        return sample["prompt"] == again["prompt"] and all(t in candidates for t in texts)

    records = lambda stem: [r for s in SPLIT_NAMES for r in files[f"{stem}/{s}.jsonl"]]  # noqa: E731
    reward_cols = ["prompt", "realized_return_24h", "score_buy", "score_hold"]
    return {
        "numbers_from_decision_time": _all_passed({
            "dpo": checks.numbers_from_decision_time(frame, dpo, rebuild, same, lookback=pd.Timedelta("1D"))
            if len(dpo) else {"passed": False, "problems": ["no rows"]},
            "grpo": checks.numbers_from_decision_time(frame, grpo, rebuild, same, lookback=pd.Timedelta("1D"))
            if len(grpo) else {"passed": False, "problems": ["no rows"]},
        }),
        "hf_loadable": _all_passed({
            "dpo_json": _hf_check(files, "dpo", "json", ["prompt", "chosen", "rejected", "reward"]),
            "grpo_parquet": _hf_check(files, "grpo", "parquet", reward_cols),
        }),
        "trl_format": _all_passed({
            "dpo": checks.trl_format(records("dpo"), "preference"),
            "grpo": checks.trl_format(records("grpo"), "prompt_only"),
        }),
    }
