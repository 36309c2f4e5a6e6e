"""Reinforcement learning from realized trading outcomes, GRPO configured as DAPO, with a LoRA adapter:
`python -m btc_platform.training.grpo_dapo`.

TRL `GRPOTrainer` on a preference dataset version's `grpo/{train,validation}.parquet` (a prompt and
`score_<action>` columns: every candidate action's realized 24h score). For each prompt the policy
samples `num_generations` answers; `btc_platform.llm.actions` decodes each to an action, and its reward
is that action's score (`invalid_penalty` for an answer naming no valid or no scored action). DAPO
(Yu et al. 2025) as configured here:

- token-level loss normalised over the batch's active tokens (`loss_type="dapo"`),
- clip-higher: epsilon 0.2 below, `epsilon_high` 0.28 above,
- no KL term (`beta=0`: no reference model is needed),
- overlong completions (no EOS within `max_completion_length`) masked out of the loss,
- dynamic sampling: prompts whose candidates all score the same cannot give a group any reward spread,
  hence no gradient; TRL does not resample, so they are dropped before training and counted.

    python -m btc_platform.training.grpo_dapo --dataset-dir <version> --model-dir <out> --base-model <folder>

A randomly initialised base seldom writes a valid answer; start from an SFT'd model (see
`llm_common.merge_adapter`) for rewards that move.
"""

from __future__ import annotations

import logging
import math
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from btc_platform.llm import actions
from btc_platform.training import llm_common as common
from btc_platform.training import runtime
from btc_platform.training.runtime import TrainerError

MODEL = "grpo_dapo_1h"
STEM = "grpo"
SCORE_PREFIX = "score_"
SAME_SCORE_TOL = 1e-12
DEFAULT_PARAMS = {
    "lora_r": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.0,
    "lora_target_modules": list(common.DEFAULT_TARGET_MODULES),
    "num_generations": 8,  # completions per prompt (the group)
    "per_device_train_batch_size": 16,  # completions per step: two prompts' groups
    "gradient_accumulation_steps": 1,
    "max_steps": 10,
    "num_train_epochs": 1.0,
    "learning_rate": 1e-3,  # a demo rate for a tiny random model; ~1e-6..1e-5 for a real one
    "max_completion_length": 48,
    "temperature": 1.0,
    "epsilon": 0.2,
    "epsilon_high": 0.28,
    "beta": 0.0,
    "mask_truncated_completions": True,
    "invalid_penalty": -0.05,
    "eval_prompts": 16,  # validation prompts answered greedily after training (0: none)
    "seed": 42,
    "cpu_threads": None,  # torch threads on CPU (None: torch's default, one per core)
}
LOGGED = ["reward", "invalid_rate", "frac_reward_zero_std", "completions/clipped_ratio", "completions/mean_length"]


# ---- dynamic sampling -------------------------------------------------------------------------

def score_columns(names) -> list[str]:
    return [c for c in names if isinstance(c, str) and c.startswith(SCORE_PREFIX)]


def scores_can_differ(row: Mapping, tol: float = SAME_SCORE_TOL) -> bool:
    """Whether some two candidate actions of the row score differently (NaN/None skipped): otherwise every
    completion of its group earns the same reward, the group's advantages are all zero and it teaches nothing."""
    values = list(actions.scores_from_row(row).values())
    return len(values) >= 2 and max(values) - min(values) > tol


def dynamic_sampling(dataset):
    """(the rows whose candidate rewards can differ, how many were dropped)."""
    kept = dataset.filter(scores_can_differ)
    return kept, len(dataset) - len(kept)


# ---- the reward -------------------------------------------------------------------------------

def completion_text(completion) -> str:
    """A TRL completion as text: a string, or conversational [{"role": "assistant", "content": ...}]."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return str(completion.get("content") or "")
    if isinstance(completion, list):
        return "".join(completion_text(m) for m in completion)
    return ""


def is_valid(completion, scores: Mapping[str, float]) -> bool:
    action, _ = actions.try_decode(completion_text(completion))
    return action is not None and action.name in scores


def make_reward(invalid_penalty: float):
    """The reward function TRL calls per generation batch: `completions` (strings or message lists) and
    each extra dataset column as a keyword list, one value per completion. Logs `invalid_rate`."""

    def trading_reward(completions, log_metric=None, **columns) -> list[float]:
        names = score_columns(columns)
        if not names:
            raise TrainerError("the reward function received no score_<action> columns")
        rewards, invalid = [], 0
        for i, completion in enumerate(completions):
            scores = actions.scores_from_row({c: columns[c][i] for c in names})
            invalid += not is_valid(completion, scores)
            rewards.append(actions.reward_for(completion_text(completion), scores, invalid_penalty))
        if log_metric is not None and completions:
            log_metric("invalid_rate", invalid / len(completions))
        return rewards

    return trading_reward


# ---- training ---------------------------------------------------------------------------------

def _load(local: Path, split: str):
    dataset = common.load_split(local, STEM, split)
    if "prompt" not in dataset.column_names:
        raise TrainerError(f"{local / STEM}/{split}.parquet (split {split!r}) has no prompt column")
    scores = score_columns(dataset.column_names)
    if not scores:
        raise TrainerError(f"{local / STEM}/{split}.parquet (split {split!r}) has no {SCORE_PREFIX}<action> columns")
    return dataset.select_columns(["prompt", *scores])


def evaluate_greedy(model, tokenizer, dataset, reward, max_new_tokens: int) -> dict:
    """Greedy answers to validation prompts, scored by the training reward."""
    if not len(dataset):
        return {}
    answers = common.generate(model, tokenizer, dataset["prompt"], max_new_tokens=max_new_tokens)
    names = score_columns(dataset.column_names)
    columns = {c: dataset[c] for c in names}
    rewards = reward(answers, **columns)
    invalid = sum(not is_valid(a, actions.scores_from_row({c: columns[c][i] for c in names}))
                  for i, a in enumerate(answers))
    return {"eval_prompts": len(answers), "eval_mean_reward": sum(rewards) / len(rewards),
            "eval_invalid_rate": invalid / len(answers), "eval_example_answer": answers[0][:200]}


def train(request: runtime.TrainRequest, manifest: dict, work_dir: Path, log: logging.Logger) -> dict:
    p = {**DEFAULT_PARAMS, **request.params}
    device = common.pick_device(p)
    eval_prompts = int(p["eval_prompts"] or 0)
    splits = ["train", "validation"] if eval_prompts > 0 else ["train"]
    common.choose_stem(manifest, [STEM], splits, "parquet", request.dataset_url)
    with tempfile.TemporaryDirectory(prefix=f"{MODEL}-") as tmp:
        local = common.fetch_splits(request, STEM, splits, "parquet", Path(tmp) / "data")
        full = _load(local, "train")
        train_ds, dropped = dynamic_sampling(full)
        log.info(f"{MODEL}: dynamic sampling dropped {dropped} of {len(full)} prompts (all candidates score the same)")
        if not len(train_ds):
            raise TrainerError(f"no prompt in {request.dataset_url.rstrip('/')}/{STEM}/train.parquet has candidate "
                               f"rewards that differ ({dropped} rows, all ties): nothing to learn")
        eval_ds = common.cap_rows(dynamic_sampling(_load(local, "validation"))[0], eval_prompts) \
            if eval_prompts > 0 else None
        model, tokenizer = common.load_policy(request.base_model, device, p)
        reward = make_reward(float(p["invalid_penalty"]))

        from trl import GRPOConfig, GRPOTrainer

        args = common.trainer_args(GRPOConfig, p, device, Path(tmp) / "trl", loss_type="dapo",
                                   log_completions=False)
        trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=train_ds,
                              processing_class=tokenizer, peft_config=common.lora_config(p),
                              callbacks=[common.log_callback(log, LOGGED[:3])])
        log.info(f"{MODEL}: {len(train_ds)} prompts x {args.num_generations} completions on {device}")
        seconds = common.run_training(trainer, log, MODEL)
        series = common.history(trainer, LOGGED)
        completions = common.samples_seen(trainer) / max(int(args.num_iterations), 1)
        window = max(1, min(5, len(series["reward"]) // 2))
        metrics = {
            **common.common_metrics(trainer, device, seconds),
            "loss_type": args.loss_type, "epsilon": args.epsilon, "epsilon_high": args.epsilon_high,
            "beta": args.beta, "mask_truncated_completions": args.mask_truncated_completions,
            "num_generations": int(args.num_generations), "invalid_penalty": float(p["invalid_penalty"]),
            "train_prompts": len(train_ds),
            "prompts_dropped_dynamic_sampling": int(dropped),
            **common.first_last(series, {"reward": "mean_reward", "invalid_rate": "invalid_rate",
                                         "frac_reward_zero_std": "zero_spread_groups",
                                         "completions/clipped_ratio": "truncated_rate"}),
            # the per-step reward is noisy (one step sees a few groups): also over the first / last `window` steps
            "reward_window": window,
            "mean_reward_early": _mean(series["reward"][:window]),
            "mean_reward_late": common.mean_of_last(series["reward"], window),
            "invalid_rate_early": _mean(series["invalid_rate"][:window]),
            "invalid_rate_late": common.mean_of_last(series["invalid_rate"], window),
            "completions": int(completions),
            "completions_per_s": common.per_second(completions, seconds),
            "tokens_per_s": common.per_second(common.tokens_seen(trainer), seconds),
        }
        if eval_ds is not None:
            metrics.update(evaluate_greedy(trainer.model, trainer.processing_class, eval_ds, reward,
                                           int(args.max_completion_length)))
        common.save_adapter(trainer.model, trainer.processing_class, work_dir)
    return metrics


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else None


def main(argv: list[str] | None = None) -> int:
    return runtime.main(MODEL, train, DEFAULT_PARAMS, argv)


if __name__ == "__main__":
    sys.exit(main())
