"""Direct preference optimisation with a LoRA adapter: `python -m btc_platform.training.dpo_lora`.

TRL `DPOTrainer` on a preference dataset version's `dpo/{train,validation}.jsonl` (prompt / chosen /
rejected; the other columns - rewards, actions, scores - are dropped). With a PEFT adapter there is no
second model in memory: the reference policy is the base with the adapter disabled (`ref_model=None`).
Metrics: the implicit reward margin (chosen minus rejected, beta-scaled log-ratio) and accuracy at the
first and last step, eval loss / margin / accuracy on validation, pairs per second.

    python -m btc_platform.training.dpo_lora --dataset-dir <version> --model-dir <out> --base-model <folder>
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

from btc_platform.training import llm_common as common
from btc_platform.training import runtime

MODEL = "dpo_lora_1h"
STEM = "dpo"
COLUMNS = ["prompt", "chosen", "rejected"]
DEFAULT_PARAMS = {
    "lora_r": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.0,
    "lora_target_modules": list(common.DEFAULT_TARGET_MODULES),
    "beta": 0.1,  # strength of the implicit KL to the reference
    "max_steps": 12,
    "num_train_epochs": 1.0,
    "learning_rate": 2e-3,  # a demo rate for a tiny random model; 5e-6..5e-5 for a real one
    "per_device_train_batch_size": 4,
    "per_device_eval_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "max_length": 1024,  # prompt + answer tokens
    "max_eval_rows": 64,
    "seed": 42,
    "cpu_threads": None,  # torch threads on CPU (None: torch's default, one per core)
}
LOGGED = ["loss", "rewards/margins", "rewards/accuracies", "rewards/chosen", "rewards/rejected"]


def train(request: runtime.TrainRequest, manifest: dict, work_dir: Path, log: logging.Logger) -> dict:
    p = {**DEFAULT_PARAMS, **request.params}
    device = common.pick_device(p)
    common.choose_stem(manifest, [STEM], ["train", "validation"], "jsonl", request.dataset_url)
    with tempfile.TemporaryDirectory(prefix=f"{MODEL}-") as tmp:
        local = common.fetch_splits(request, STEM, ["train", "validation"], "jsonl", Path(tmp) / "data")
        train_ds = common.load_split(local, STEM, "train", COLUMNS)
        eval_ds = common.cap_rows(common.load_split(local, STEM, "validation", COLUMNS), p["max_eval_rows"])
        model, tokenizer = common.load_policy(request.base_model, device, p)
        log.info(f"{MODEL}: {len(train_ds)} train / {len(eval_ds)} eval pairs on {device}")

        from trl import DPOConfig, DPOTrainer

        args = common.trainer_args(DPOConfig, p, device, Path(tmp) / "trl")
        trainer = DPOTrainer(model=model, ref_model=None, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                             processing_class=tokenizer, peft_config=common.lora_config(p),
                             callbacks=[common.log_callback(log, LOGGED[:3])])
        seconds = common.run_training(trainer, log, MODEL)
        evaluation = trainer.evaluate()
        series = common.history(trainer, LOGGED)
        metrics = {
            **common.common_metrics(trainer, device, seconds),
            "train_pairs": len(train_ds),
            "eval_pairs": len(eval_ds),
            "beta": float(args.beta),
            **common.first_last(series, {"loss": "train_loss", "rewards/margins": "reward_margin",
                                         "rewards/accuracies": "reward_accuracy"}),
            "reward_chosen_last": (series["rewards/chosen"] or [None])[-1],
            "reward_rejected_last": (series["rewards/rejected"] or [None])[-1],
            "eval_loss": evaluation.get("eval_loss"),
            "eval_reward_margin": evaluation.get("eval_rewards/margins"),
            "eval_reward_accuracy": evaluation.get("eval_rewards/accuracies"),
            "pairs_per_s": common.per_second(common.samples_seen(trainer), seconds),
            "tokens_per_s": common.per_second(common.tokens_seen(trainer), seconds),
        }
        common.save_adapter(trainer.model, trainer.processing_class, work_dir)
    return metrics


def main(argv: list[str] | None = None) -> int:
    return runtime.main(MODEL, train, DEFAULT_PARAMS, argv)


if __name__ == "__main__":
    sys.exit(main())
