"""Judge a trained LLM adapter (SFT, DPO or GRPO/DAPO) out of sample: `python -m btc_platform.evaluation.llm_eval`.

The adapter answers the prompts of a published preference dataset version's `grpo/validation.parquet`
and `grpo/test.parquet` (the first `max_prompts` rows of each, in time order), greedily and in batches.
Each answer goes through the one action decoder (`btc_platform.llm.actions`) and earns the row's
realized score of the action it names (`score_<action>`); an answer naming no valid action, or an
action the row never scored, is invalid and earns 0, as if no trade were made. The mean reward and the
invalid rate are reported separately, beside baselines computed from the same reward columns:

- `hold`: never trade (score_hold, 0 by construction);
- `always_buy`: a market buy every time (score_buy);
- `best_fixed`: the one action with the best mean score **on validation**, applied to both splits (so
  its test figure is honest; its name is `best_fixed_action`);
- `oracle`: each row's best score, the upper bound.

An unscored (NaN) candidate counts 0 in the baselines, as it does for the model. Latency is the
generation time per answer: each batch is timed and its time shared among its answers (`latency_ms_*`,
p50/p95 over those per-answer times); `answers_per_s` is answers over the total generation time. One
small untimed generation warms the model up first.

The result is written as `evaluation.json` into the model version folder (local or gs://), the only file
this adds there, and returned. Launched by Dagster it speaks Pipes (extras `model_url`,
`preferences_url`, optional `max_prompts`, `max_new_tokens`, `base_model`, `device`) and reports the flat
figures (`test_mean_reward`, `validation_invalid_rate`, ..., `best_fixed_action`) as materialization
metadata; by hand:

    python -m btc_platform.evaluation.llm_eval --model-url <model version> --preferences-url <dataset version>

Only `dagster_pipes` is imported, never `dagster`; torch/transformers only once the request checked out.
A bad request (no manifest, a missing or empty split, no adapter) exits 2 with the message on stderr.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import posixpath
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from dagster_pipes import PipesEnvVarParamsLoader, open_dagster_pipes

from btc_platform.llm.actions import scores_from_row, try_decode
from btc_platform.storage import open_url
from btc_platform.training import runtime
from btc_platform.training.runtime import TrainerError

SPLITS = ("validation", "test")
STEM = "grpo"
RESULT_FILE = "evaluation.json"
ADAPTER_CONFIG = "adapter_config.json"
TIME_COLUMN = "decision_at"
N_EXAMPLES = 3
PROMPT_TAIL_CHARS = 160
BATCH_SIZE = 16
SPLIT_KEYS = ("n", "mean_reward", "invalid_rate", "action_counts", "hold_mean_reward", "always_buy_mean_reward",
              "best_fixed_mean_reward", "oracle_mean_reward", "latency_ms_mean", "latency_ms_p50",
              "latency_ms_p95", "answers_per_s")

LOG = logging.getLogger("llm_eval")


# ---- the preference rows --------------------------------------------------------------------

def read_split(preferences_url: str, split: str, max_prompts: int | None):
    """`grpo/<split>.parquet` of the version as a DataFrame, in time order (`decision_at`, stable), cut to
    the first `max_prompts` rows (all when None or <= 0). A missing, corrupt or empty file, or one
    without prompts or score columns, is a TrainerError naming file and split."""
    import pandas as pd

    fs, root = open_url(preferences_url)
    name = f"{STEM}/{split}.parquet"
    where = f"{preferences_url.rstrip('/')}/{name}"
    path = posixpath.join(root, name)
    if not fs.isfile(path):
        raise TrainerError(f"split {split!r} not found: {where} is missing (is it a preference dataset version?)")
    try:
        frame = pd.read_parquet(io.BytesIO(fs.cat_file(path)))
    except Exception as exc:  # pyarrow raises several kinds for a damaged file
        raise TrainerError(f"corrupt dataset file {where} (split {split!r}): {exc}") from None
    if frame.empty:
        raise TrainerError(f"split {split!r} is empty: {where} has no rows")
    scores = [c for c in frame.columns if str(c).startswith("score_")]
    if "prompt" not in frame.columns or not scores:
        raise TrainerError(f"{where} (split {split!r}) needs a prompt column and score_<action> columns; "
                           f"it has {list(frame.columns)}")
    if TIME_COLUMN in frame.columns:
        order = pd.to_datetime(frame[TIME_COLUMN], utc=True, errors="coerce")
        frame = (frame.assign(_order=order).sort_values("_order", kind="stable", na_position="last")
                 .drop(columns="_order"))
    if max_prompts is not None and int(max_prompts) > 0:
        frame = frame.head(int(max_prompts))
    return frame.reset_index(drop=True)


def _prompt(value):
    """A string prompt as it is; a conversational one (list of messages, as parquet gives it back) as a list
    of plain dicts, which `generate` renders with the chat template."""
    if isinstance(value, str):
        return value
    return [dict(m) for m in value]


def _score_table(frame) -> list[dict[str, float]]:
    return [scores_from_row(row) for row in frame[[c for c in frame.columns if str(c).startswith("score_")]]
            .to_dict(orient="records")]


def _actions(frame) -> list[str]:
    return [str(c).removeprefix("score_") for c in frame.columns if str(c).startswith("score_")]


def _mean(values) -> float:
    values = list(values)
    return float(sum(values) / len(values)) if values else 0.0


def fixed_mean(scores: list[dict[str, float]], action: str) -> float:
    """The mean reward of always naming `action`: an unscored row counts 0 (no trade), as for the model."""
    return _mean(s.get(action, 0.0) for s in scores)


def best_fixed_action(scores: list[dict[str, float]], actions: list[str]) -> str:
    """The action with the best mean score over `scores` (validation); ties go to hold, then column order."""
    return min(actions, key=lambda a: (-fixed_mean(scores, a), a != "hold", actions.index(a)))


def oracle_mean(scores: list[dict[str, float]]) -> float:
    """The mean of each row's best score (0 for a row with none scored): no policy does better."""
    return _mean(max(s.values()) if s else 0.0 for s in scores)


# ---- judging the answers --------------------------------------------------------------------

def judge(answer: str, scores: dict[str, float]) -> tuple[str | None, str | None, float]:
    """(action name, None, reward) for a valid answer, (None or the name, reason, 0.0) for an invalid one."""
    action, reason = try_decode(answer)
    if action is None:
        return None, reason, 0.0
    if action.name not in scores:
        return action.name, f"action {action.name} has no score in this row", 0.0
    return action.name, None, float(scores[action.name])


def timed_generate(model, tokenizer, prompts: list, max_new_tokens: int, batch_size: int = BATCH_SIZE):
    """(answers, per-answer seconds, total seconds): greedy answers in batches, each batch's time shared
    equally among its answers."""
    import torch

    from btc_platform.training.llm_common import generate

    cuda = next(model.parameters()).device.type == "cuda"
    answers: list[str] = []
    per_answer: list[float] = []
    total = 0.0
    for i in range(0, len(prompts), batch_size):
        batch = prompts[i:i + batch_size]
        if cuda:
            torch.cuda.synchronize()
        began = time.perf_counter()
        out = generate(model, tokenizer, batch, max_new_tokens=max_new_tokens, batch_size=len(batch))
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - began
        total += seconds
        answers += out
        per_answer += [seconds / len(batch)] * len(batch)
    return answers, per_answer, total


def evaluate_split(model, tokenizer, frame, best_fixed: str, max_new_tokens: int) -> tuple[dict, list[dict]]:
    """The split's figures and its per-row records (prompt, answer, action, reason, reward)."""
    prompts = [_prompt(p) for p in frame["prompt"]]
    scores = _score_table(frame)
    answers, per_answer, total = timed_generate(model, tokenizer, prompts, max_new_tokens)
    records, counts, rewards, invalid = [], Counter(), [], 0
    for prompt, answer, row_scores in zip(prompts, answers, scores):
        name, reason, reward = judge(answer, row_scores)
        if reason is None:
            counts[name] += 1
        else:
            counts["invalid"] += 1
            invalid += 1
        rewards.append(reward)
        text = prompt if isinstance(prompt, str) else json.dumps(prompt)
        records.append({"prompt_tail": text[-PROMPT_TAIL_CHARS:], "answer": answer, "action": name,
                        "reason": reason, "reward": reward})
    n = len(frame)
    latency_ms = [s * 1e3 for s in per_answer]
    figures = {
        "n": n,
        "mean_reward": _mean(rewards),
        "invalid_rate": invalid / n,
        "action_counts": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        "hold_mean_reward": fixed_mean(scores, "hold"),
        "always_buy_mean_reward": fixed_mean(scores, "buy"),
        "best_fixed_mean_reward": fixed_mean(scores, best_fixed),
        "oracle_mean_reward": oracle_mean(scores),
        "latency_ms_mean": round(_mean(latency_ms), 3),
        "latency_ms_p50": round(float(np.percentile(latency_ms, 50)), 3),
        "latency_ms_p95": round(float(np.percentile(latency_ms, 95)), 3),
        "answers_per_s": round(n / total, 3) if total > 0 else 0.0,
    }
    return figures, records


# ---- the model version ----------------------------------------------------------------------

def _check_adapter(model_url: str) -> None:
    fs, root = open_url(model_url)
    if not fs.isfile(posixpath.join(root, ADAPTER_CONFIG)):
        raise FileNotFoundError(f"no trained LoRA adapter at {model_url}: {ADAPTER_CONFIG} is missing "
                                "(pass a published SFT/DPO/GRPO model version folder)")


def _model_name(model_url: str) -> str:
    fs, root = open_url(model_url)
    card = posixpath.join(root, runtime.CARD)
    if fs.isfile(card):
        try:
            name = json.loads(fs.cat_file(card)).get("model")
            if name:
                return str(name)
        except ValueError:
            pass
    return posixpath.basename(model_url.rstrip("/")) or model_url


def _local_model_dir(model_url: str, tmp: Path) -> Path:
    """The model folder itself when local; a remote one's files (not its subfolders) copied to `tmp`."""
    if "://" not in model_url:
        return Path(model_url)
    fs, root = open_url(model_url)
    local = tmp / "model"
    local.mkdir(parents=True, exist_ok=True)
    for path in fs.ls(root, detail=False):
        if fs.isfile(path):
            fs.get_file(path, str(local / posixpath.basename(path.rstrip("/"))))
    return local


def write_result(model_url: str, result: dict) -> str:
    fs, root = open_url(model_url)
    path = posixpath.join(root, RESULT_FILE)
    with fs.open(path, "w") as f:
        f.write(json.dumps(result, indent=2, sort_keys=True, default=str))
    return f"{model_url.rstrip('/')}/{RESULT_FILE}"


# ---- the evaluation -------------------------------------------------------------------------

def evaluate_llm(model_url: str, preferences_url: str, max_prompts: int = 64, max_new_tokens: int = 48,
                 device: str | None = None, log=None, base_model: str | None = None) -> dict:
    """Judge the adapter at `model_url` on the preference version's validation and test prompts (see the
    module doc); writes `evaluation.json` into the model folder and returns the result."""
    log = log or LOG
    model_url, preferences_url = str(model_url), str(preferences_url)
    runtime.read_manifest(preferences_url)  # an unfinished version is refused
    frames = {s: read_split(preferences_url, s, max_prompts) for s in SPLITS}
    _check_adapter(model_url)
    actions = _actions(frames["validation"])
    best_fixed = best_fixed_action(_score_table(frames["validation"]), actions)

    from btc_platform.training.llm_common import generate, load_trained

    device = device or runtime.pick_device()
    with tempfile.TemporaryDirectory(prefix="llm_eval-") as tmp:
        model, tokenizer = load_trained(_local_model_dir(model_url, Path(tmp)), base_model=base_model, device=device)
    log.info(f"llm_eval: {model_url} on {device}; {', '.join(f'{len(f)} {s}' for s, f in frames.items())} prompts")
    generate(model, tokenizer, [_prompt(frames["validation"]["prompt"].iloc[0])], max_new_tokens=2)  # warm-up

    result: dict = {"model": _model_name(model_url), "model_url": model_url, "preferences_url": preferences_url,
                    "device": device}
    examples: list[dict] = []
    for split in SPLITS:
        figures, records = evaluate_split(model, tokenizer, frames[split], best_fixed, int(max_new_tokens))
        result[split] = figures
        if split == "test":
            examples = records[:N_EXAMPLES]
        log.info(f"llm_eval {split}: mean reward {figures['mean_reward']:.5f} (invalid {figures['invalid_rate']:.1%}; "
                 f"hold {figures['hold_mean_reward']:.5f}, best fixed {best_fixed} "
                 f"{figures['best_fixed_mean_reward']:.5f}, oracle {figures['oracle_mean_reward']:.5f}); "
                 f"{figures['latency_ms_mean']:.1f} ms per answer")
    result["best_fixed_action"] = best_fixed
    result["examples"] = examples
    where = write_result(model_url, result)
    log.info(f"llm_eval: wrote {where}")
    return result


def flat_figures(result: dict) -> dict:
    """The result as flat metadata: `<split>_<figure>` for every split figure, plus the names and URLs."""
    flat = {k: result[k] for k in ("model", "model_url", "preferences_url", "device", "best_fixed_action")}
    for split in SPLITS:
        for key in SPLIT_KEYS:
            flat[f"{split}_{key}"] = result[split][key]
    return flat


# ---- the process ----------------------------------------------------------------------------

def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m btc_platform.evaluation.llm_eval")
    parser.add_argument("--model-url", help="a published LLM model version (folder or gs:// URL)")
    parser.add_argument("--preferences-url", help="a published preference dataset version (folder or gs:// URL)")
    parser.add_argument("--max-prompts", type=int, default=64, help="first N rows of each split (<= 0: all)")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--base-model", default=None, help="the base model, when not the adapter's own")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when visible)")
    args, _ = parser.parse_known_args(argv)  # Pipes may add its own CLI args
    return args


def main(argv: list[str] | None = None) -> int:
    """Pipes when Dagster launched the process, else the command line (the result JSON is the last stdout
    line). Exit 2 on a bad request (TrainerError, FileNotFoundError) with the message on stderr."""
    args = _parse_args(argv)
    try:
        if PipesEnvVarParamsLoader().is_dagster_pipes_process():
            with open_dagster_pipes() as pipes:
                extras = pipes.extras
                model_url = extras.get("model_url") or args.model_url
                preferences_url = extras.get("preferences_url") or args.preferences_url
                if not model_url or not preferences_url:
                    raise TrainerError("extras must name model_url and preferences_url")
                given = lambda key, default: default if extras.get(key) is None else extras[key]  # noqa: E731
                result = evaluate_llm(model_url, preferences_url,
                                      max_prompts=int(given("max_prompts", args.max_prompts)),
                                      max_new_tokens=int(given("max_new_tokens", args.max_new_tokens)),
                                      device=extras.get("device") or args.device, log=pipes.log,
                                      base_model=extras.get("base_model") or args.base_model)
                pipes.report_asset_materialization(metadata=runtime.to_pipes_metadata(flat_figures(result)))
        else:
            if not args.model_url or not args.preferences_url:
                raise TrainerError("outside Dagster, pass --model-url and --preferences-url")
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
            result = evaluate_llm(args.model_url, args.preferences_url, max_prompts=args.max_prompts,
                                  max_new_tokens=args.max_new_tokens, device=args.device,
                                  base_model=args.base_model)
            print(json.dumps(result, default=str))
    except (TrainerError, FileNotFoundError) as exc:
        print(f"llm_eval: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
