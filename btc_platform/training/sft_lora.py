"""Supervised fine-tuning with a LoRA adapter: `python -m btc_platform.training.sft_lora`.

TRL `SFTTrainer` on an instruction dataset version's `prompt_completion/{train,validation}.jsonl`
(conversational prompt [system, user] / completion [assistant]: the loss is on the completion only),
or on `messages/*.jsonl` when the version has no prompt/completion files (loss on the assistant turn).
The base model (`base_model`: a hub id or a local folder) stays frozen; the adapter and the tokenizer
are published with `metrics.json` and the model card. Launched by Dagster it speaks Pipes; by hand:

    python -m btc_platform.training.sft_lora --dataset-dir <version> --model-dir <out> --base-model <folder>

The defaults are demo-sized (a tiny model, two CPU cores, seconds); pass production sizes in params.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

from btc_platform.training import llm_common as common
from btc_platform.training import runtime

MODEL = "sft_lora_1h"
STEMS = ["prompt_completion", "messages"]
COLUMNS = {"prompt_completion": ["prompt", "completion"], "messages": ["messages"]}
DEFAULT_PARAMS = {
    "lora_r": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.0,
    "lora_target_modules": list(common.DEFAULT_TARGET_MODULES),
    "max_steps": 20,  # > 0 wins over num_train_epochs
    "num_train_epochs": 1.0,
    "learning_rate": 2e-3,  # a demo rate for a tiny random model; 1e-4..2e-4 for a real one
    "per_device_train_batch_size": 4,
    "per_device_eval_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "max_length": 1024,  # tokens of prompt + completion; longer rows are cut at the end (counted in metrics)
    "max_eval_rows": 64,  # validation rows evaluated (None: all)
    "assistant_only_loss": True,  # messages/ files only: needs {% generation %} markers in the chat template
    "seed": 42,
    "cpu_threads": None,  # torch threads on CPU (None: torch's default, one per core)
}


def train(request: runtime.TrainRequest, manifest: dict, work_dir: Path, log: logging.Logger) -> dict:
    p = {**DEFAULT_PARAMS, **request.params}
    device = common.pick_device(p)
    stem = common.choose_stem(manifest, STEMS, ["train", "validation"], "jsonl", request.dataset_url)
    with tempfile.TemporaryDirectory(prefix=f"{MODEL}-") as tmp:
        local = common.fetch_splits(request, stem, ["train", "validation"], "jsonl", Path(tmp) / "data")
        train_ds = common.load_split(local, stem, "train", COLUMNS[stem])
        eval_ds = common.cap_rows(common.load_split(local, stem, "validation", COLUMNS[stem]), p["max_eval_rows"])
        model, tokenizer = common.load_policy(request.base_model, device, p)
        log.info(f"{MODEL}: {len(train_ds)} train / {len(eval_ds)} eval rows from {stem}/ on {device}")

        from trl import SFTConfig, SFTTrainer

        extra = {"assistant_only_loss": bool(p["assistant_only_loss"])} if stem == "messages" else {}
        config_params = {k: v for k, v in p.items() if k != "assistant_only_loss"}
        args = common.trainer_args(SFTConfig, config_params, device, Path(tmp) / "trl", **extra)
        trainer = SFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                             processing_class=tokenizer, peft_config=common.lora_config(p),
                             callbacks=[common.log_callback(log, ["loss", "mean_token_accuracy"])])
        at_max = _rows_at_max_length(trainer.train_dataset, args.max_length)
        if at_max:
            log.warning(f"{MODEL}: {at_max} train rows reach max_length={args.max_length} and are cut at the end")
        seconds = common.run_training(trainer, log, MODEL)
        evaluation = trainer.evaluate()
        series = common.history(trainer, ["loss", "mean_token_accuracy"])
        metrics = {
            **common.common_metrics(trainer, device, seconds),
            "dataset_files": f"{stem}/",
            "train_rows": len(train_ds),
            "eval_rows": len(eval_ds),
            "train_rows_at_max_length": at_max,
            **common.first_last(series, {"loss": "train_loss", "mean_token_accuracy": "train_token_accuracy"}),
            "eval_loss": evaluation.get("eval_loss"),
            "eval_token_accuracy": evaluation.get("eval_mean_token_accuracy"),
            "tokens_seen": common.tokens_seen(trainer),
            "tokens_per_s": common.per_second(common.tokens_seen(trainer), seconds),
            "rows_per_s": common.per_second(common.samples_seen(trainer), seconds),
        }
        common.save_adapter(trainer.model, trainer.processing_class, work_dir)
    return metrics


def _rows_at_max_length(dataset, max_length: int | None) -> int:
    if not max_length or dataset is None or "input_ids" not in dataset.column_names:
        return 0
    return int(sum(len(ids) >= max_length for ids in dataset["input_ids"]))


def main(argv: list[str] | None = None) -> int:
    return runtime.main(MODEL, train, DEFAULT_PARAMS, argv)


if __name__ == "__main__":
    sys.exit(main())
