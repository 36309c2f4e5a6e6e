"""What the LLM trainers (SFT, DPO, GRPO/DAPO with LoRA) share: the base model, the adapter, the TRL
configuration, the dataset splits, the figures and greedy generation.

torch, transformers, TRL, PEFT and datasets are imported inside the functions, so a trainer that fails
on its request (no manifest, a missing file) fails before paying for those imports.

Parameters (`params`, a flat dict; every trainer has its own DEFAULT_PARAMS):

- LoRA: `lora_r`, `lora_alpha`, `lora_dropout`, `lora_target_modules` (list or comma-separated),
  `lora_modules_to_save` (modules trained in full beside the adapter).
- Schedule: `max_steps` (> 0 wins over epochs), `num_train_epochs`, `learning_rate`,
  `per_device_train_batch_size`, `per_device_eval_batch_size`, `gradient_accumulation_steps`,
  `lr_scheduler_type`, `warmup_steps`, `weight_decay`, `max_grad_norm`, `seed`, `activation_checkpointing`
  (or its old name `gradient_checkpointing`).
- Machine: `base_dtype` ("auto": bf16 on a GPU that has it, else fp32), `cpu_threads` (torch threads on CPU).
- Any other key that names a field of the TRL config class (`max_length`, `beta`, `temperature`, ...)
  is passed through as it is.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from pathlib import Path

from btc_platform.training import runtime
from btc_platform.training.runtime import TrainerError

# Every linear projection of a Qwen2 / Llama / Mistral block: LoRA on all of them learns more per
# parameter than attention-only (QLoRA paper); the names are the same across these families.
DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LORA_DEFAULTS = {"lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.05,
                 "lora_target_modules": list(DEFAULT_TARGET_MODULES)}
SCHEDULE_DEFAULTS = {
    "max_steps": 20,
    "num_train_epochs": 1.0,
    "learning_rate": 2e-4,
    "per_device_train_batch_size": 4,
    "per_device_eval_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "lr_scheduler_type": "constant",
    "warmup_steps": 0,
    "weight_decay": 0.0,
    "max_grad_norm": 1.0,
    "seed": 42,
    # TRL turns it on by default; it only slows a small model down. `gradient_checkpointing` is accepted
    # as the old name (transformers 5.x renamed it and warns on the old one).
    "activation_checkpointing": False,
}


# ---- the model --------------------------------------------------------------------------------

def pick_device(params: dict | None = None) -> str:
    """'cuda' when torch sees a GPU, else 'cpu'. On CPU, `cpu_threads` (params) caps torch's threads: on a
    small shared machine one thread per process avoids OpenMP threads waiting on a busy core, which
    slows a tiny model's many small ops down tens of times."""
    device = runtime.pick_device()
    threads = (params or {}).get("cpu_threads")
    if device == "cpu" and threads:
        import torch

        torch.set_num_threads(int(threads))
    return device


def _dtype(device: str, params: dict | None):
    """bfloat16 weights on a GPU that supports them (unless params say `base_dtype`), float32 on CPU."""
    import torch

    name = (params or {}).get("base_dtype", "auto")
    if name not in (None, "auto"):
        try:
            return getattr(torch, str(name))
        except AttributeError:
            raise TrainerError(f"unknown base_dtype {name!r} (use auto, float32, bfloat16, float16)") from None
    if device == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_policy(base_model: str | None, device: str, params: dict | None = None):
    """(model, tokenizer) of the base model (a hub id or a local folder) on `device`; a missing folder or
    an unknown / unreachable id is a TrainerError naming it."""
    from btc_platform.llm.tiny_model import load_base_model

    if not base_model:
        raise TrainerError("no base model: pass base_model (a hub id or a local folder) in the request")
    try:
        model, tokenizer = load_base_model(str(base_model), device=device, dtype=_dtype(device, params))
    except FileNotFoundError as exc:
        raise TrainerError(str(exc)) from exc
    except (OSError, ValueError) as exc:  # a folder with a broken config or weights
        raise TrainerError(f"base model {base_model} could not be loaded: {exc}") from exc
    model.config.use_cache = False  # training; generate() turns it on per call
    return model, tokenizer


def _modules(value) -> list[str] | str:
    if isinstance(value, str):
        return "all-linear" if value == "all-linear" else [m.strip() for m in value.split(",") if m.strip()]
    return list(value)


def lora_config(params: dict):
    """PEFT LoraConfig for a causal LM from `lora_r`, `lora_alpha`, `lora_dropout`, `lora_target_modules`
    and `lora_modules_to_save` (modules trained in full and saved with the adapter, matched by name suffix,
    e.g. ["norm"]: every RMSNorm; None by default)."""
    from peft import LoraConfig

    p = {**LORA_DEFAULTS, **params}
    save = p.get("lora_modules_to_save")
    return LoraConfig(r=int(p["lora_r"]), lora_alpha=float(p["lora_alpha"]), lora_dropout=float(p["lora_dropout"]),
                      target_modules=_modules(p["lora_target_modules"]),
                      modules_to_save=_modules(save) if save else None, bias="none", task_type="CAUSAL_LM")


def trainer_args(cls, params: dict, device: str, output_dir: str | Path, **extra):
    """A TRL config (`SFTConfig`, `DPOConfig`, `GRPOConfig`) for `device`: CPU (`use_cpu`, fp32) or CUDA
    (bf16 when supported), no reporting integrations, seeded, a log entry every step, no checkpoints.

    Precedence: these defaults < params naming a field of `cls` < `extra` (what the trainer fixes).
    An invalid combination (TRL's ValueError) is a TrainerError.
    """
    import torch

    p = {**SCHEDULE_DEFAULTS, **params}
    fields = {f.name for f in dataclasses.fields(cls)}
    cuda = device == "cuda"
    bf16 = bool(cuda and torch.cuda.is_bf16_supported())
    max_steps = int(p["max_steps"]) if p.get("max_steps") not in (None, 0, -1) else -1
    kwargs = {
        "output_dir": str(output_dir),
        "report_to": [],
        "use_cpu": not cuda,
        "bf16": bf16,  # TRL's default (True unless fp16) would autocast to bf16 on CPU too
        "fp16": False,
        "seed": int(p["seed"]),
        "data_seed": int(p["seed"]),
        "logging_strategy": "steps",
        "logging_steps": 1,
        "logging_first_step": True,
        "save_strategy": "no",
        "eval_strategy": "no",  # the trainers evaluate once, after training
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "max_steps": max_steps,
        "num_train_epochs": float(p["num_train_epochs"]),
        "learning_rate": float(p["learning_rate"]),
        "per_device_train_batch_size": int(p["per_device_train_batch_size"]),
        "per_device_eval_batch_size": int(p["per_device_eval_batch_size"]),
        "gradient_accumulation_steps": int(p["gradient_accumulation_steps"]),
        "lr_scheduler_type": str(p["lr_scheduler_type"]),
        "warmup_steps": int(p["warmup_steps"]),
        "weight_decay": float(p["weight_decay"]),
        "max_grad_norm": float(p["max_grad_norm"]),
    }
    checkpointing = bool(params.get("activation_checkpointing", params.get("gradient_checkpointing", False)))
    if "activation_checkpointing" in fields:
        kwargs["activation_checkpointing"] = checkpointing  # the old name then mirrors it, without a warning
    else:
        kwargs["gradient_checkpointing"] = checkpointing
    kwargs.update({k: v for k, v in params.items()
                   if k in fields and k not in SCHEDULE_DEFAULTS
                   and k not in ("output_dir", "use_cpu", "report_to", "gradient_checkpointing")})
    kwargs.update(extra)
    unknown = sorted(k for k in kwargs if k not in fields)
    if unknown:
        raise TrainerError(f"{cls.__name__} has no options {unknown}")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise TrainerError(f"invalid {cls.__name__}: {exc}") from exc


# ---- the dataset ------------------------------------------------------------------------------

def choose_stem(manifest: dict, stems: list[str], splits: list[str], ext: str, where: str) -> str:
    """The first of `stems` (file folders in a dataset version) that has all `splits` as `<stem>/<split>.<ext>`:
    as the manifest lists them, or, for a manifest without a file list, as the dataset folder holds them."""
    from btc_platform.storage import open_url

    files = manifest.get("files")
    if isinstance(files, list):
        exists = lambda name: name in files  # noqa: E731
    else:
        fs, root = open_url(where)
        exists = lambda name: fs.isfile(f"{root.rstrip('/')}/{name}")  # noqa: E731
    for stem in stems:
        if all(exists(f"{stem}/{s}.{ext}") for s in splits):
            return stem
    wanted = ", ".join(f"{stem}/{{{','.join(splits)}}}.{ext}" for stem in stems)
    raise TrainerError(f"dataset {where} has none of the files {wanted}: is it the right kind of dataset?")


def fetch_splits(request, stem: str, splits: list[str], ext: str, local_dir: Path) -> Path:
    """Copy `<stem>/<split>.<ext>` for each split from the dataset version to `local_dir`."""
    return runtime.fetch_files(request.dataset_url, [f"{stem}/{s}.{ext}" for s in splits], Path(local_dir))


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise TrainerError(f"corrupt dataset file {path}: line {number} is not JSON ({exc})") from None
            if not isinstance(row, dict):
                raise TrainerError(f"corrupt dataset file {path}: line {number} is not a JSON object")
            rows.append(row)
    return rows


def load_split(local_dir: str | Path, stem: str, split: str, columns: list[str] | None = None):
    """`<local_dir>/<stem>/<split>.jsonl` or `.parquet` as a HF `datasets.Dataset`, reduced to `columns`
    when given. A missing, corrupt or empty file, or one lacking a column, is a TrainerError naming file
    and split."""
    import datasets
    import pandas as pd

    base = Path(local_dir) / stem
    path = next((base / f"{split}.{ext}" for ext in ("jsonl", "parquet") if (base / f"{split}.{ext}").is_file()), None)
    if path is None:
        raise TrainerError(f"split {split!r} not found: no {base}/{split}.jsonl or .parquet")
    if path.suffix == ".jsonl":
        rows = _read_jsonl(path)
        names = list(dict.fromkeys(k for r in rows for k in r))
    else:
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several kinds for a damaged file
            raise TrainerError(f"corrupt dataset file {path} (split {split!r}): {exc}") from None
        names = list(frame.columns)
    n = len(rows) if path.suffix == ".jsonl" else len(frame)
    if n == 0:
        raise TrainerError(f"split {split!r} is empty: {path} has no rows")
    missing = [c for c in columns or [] if c not in names]
    if missing:
        raise TrainerError(f"{path} (split {split!r}) lacks columns {missing}; it has {names}")
    if path.suffix == ".jsonl":
        if columns:
            rows = [{c: r.get(c) for c in columns} for r in rows]
        dataset = datasets.Dataset.from_list(rows)
    else:
        dataset = datasets.Dataset.from_pandas(frame[columns] if columns else frame, preserve_index=False)
    return dataset


def cap_rows(dataset, limit) -> object:
    """The first `limit` rows (all when limit is None or <= 0)."""
    if limit is None or int(limit) <= 0 or len(dataset) <= int(limit):
        return dataset
    return dataset.select(range(int(limit)))


# ---- the figures ------------------------------------------------------------------------------

def history(trainer, keys: list[str]) -> dict[str, list[float]]:
    """Per-step training values of `keys` from `trainer.state.log_history` (eval entries and the final
    summary left out), as lists in step order; a key never logged has an empty list."""
    out: dict[str, list[float]] = {k: [] for k in keys}
    for entry in trainer.state.log_history:
        if "train_runtime" in entry or any(k.startswith("eval_") for k in entry):
            continue
        for k in keys:
            v = entry.get(k)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                out[k].append(float(v))
    return out


def first_last(series: dict[str, list[float]], names: dict[str, str]) -> dict[str, float | None]:
    """{`<name>_first`: .., `<name>_last`: ..} for each logged key -> metric name; None when never logged."""
    out: dict[str, float | None] = {}
    for key, name in names.items():
        values = series.get(key) or []
        out[f"{name}_first"] = values[0] if values else None
        out[f"{name}_last"] = values[-1] if values else None
    return out


def mean_of_last(values: list[float], n: int) -> float | None:
    """The mean of the last n values (noisy per-step figures such as the GRPO reward)."""
    return sum(values[-n:]) / len(values[-n:]) if values else None


def samples_seen(trainer) -> int:
    """Training samples (rows, pairs or completions) processed: steps x per-device batch x accumulation x processes."""
    a = trainer.args
    return int(trainer.state.global_step * a.per_device_train_batch_size * a.gradient_accumulation_steps * a.world_size)


def tokens_seen(trainer) -> int:
    """Input tokens the trainer counted (TRL logs `num_tokens`; transformers counts num_input_tokens_seen)."""
    logged = [e["num_tokens"] for e in trainer.state.log_history if isinstance(e.get("num_tokens"), (int, float))]
    return int(max(logged) if logged else trainer.state.num_input_tokens_seen or 0)


def per_second(count: float, seconds: float) -> float:
    return round(count / seconds, 3) if seconds > 0 else 0.0


def parameter_counts(model) -> dict[str, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable_params": int(trainable), "total_params": int(total)}


def common_metrics(trainer, device: str, train_s: float) -> dict:
    """device, steps, train time, parameter counts and library versions."""
    import peft
    import transformers
    import trl

    return {"device": device, "steps": int(trainer.state.global_step), "train_time_s": round(train_s, 3),
            **parameter_counts(trainer.model),
            "trl_version": trl.__version__, "transformers_version": transformers.__version__,
            "peft_version": peft.__version__}


def run_training(trainer, log: logging.Logger, what: str) -> float:
    """trainer.train() without transformers' stdout printer (log_callback reports instead); the seconds it took."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    began = time.monotonic()
    trainer.train()
    seconds = time.monotonic() - began
    log.info(f"{what}: {trainer.state.global_step} steps in {seconds:.1f} s")
    return seconds


def log_callback(log: logging.Logger, keys: list[str]):
    """A TrainerCallback that sends each logged step's `keys` to `log` (the Dagster run log under Pipes)."""
    from transformers import TrainerCallback

    class _Forward(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            shown = {k: logs[k] for k in keys if logs and isinstance(logs.get(k), (int, float))}
            if shown:
                log.info(f"step {state.global_step}/{state.max_steps}: "
                         + ", ".join(f"{k}={v:.4g}" for k, v in shown.items()))

    return _Forward()


# ---- the model version ------------------------------------------------------------------------

def save_adapter(model, tokenizer, work_dir: Path) -> list[str]:
    """The LoRA adapter (`adapter_config.json`, `adapter_model.safetensors`) and the tokenizer into work_dir."""
    work_dir = Path(work_dir)
    model.save_pretrained(work_dir)
    tokenizer.save_pretrained(work_dir)
    if not (work_dir / "adapter_config.json").is_file():
        raise RuntimeError(f"no adapter written to {work_dir}: is the model a PEFT model?")
    return sorted(p.name for p in work_dir.iterdir())


def load_trained(model_dir: str | Path, *, base_model: str | None = None, device: str | None = None):
    """(model, tokenizer) of a published LoRA model folder: its base (adapter_config's
    base_model_name_or_path unless `base_model` is given) with the adapter on top, in eval mode."""
    from peft import PeftModel

    from btc_platform.llm.tiny_model import load_base_model

    model_dir = Path(model_dir)
    config = model_dir / "adapter_config.json"
    if not config.is_file():
        raise FileNotFoundError(f"no LoRA adapter in {model_dir} (adapter_config.json missing)")
    base = base_model or json.loads(config.read_text())["base_model_name_or_path"]
    model, _ = load_base_model(base, device=device)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = PeftModel.from_pretrained(model, model_dir)
    model.eval()
    return model, tokenizer


def merge_adapter(model_dir: str | Path, out_dir: str | Path, *, base_model: str | None = None) -> Path:
    """The base with the adapter merged in, saved as a full model folder (a base for the next stage,
    e.g. GRPO after SFT)."""
    model, tokenizer = load_trained(model_dir, base_model=base_model)
    merged = model.merge_and_unload()
    out = Path(out_dir)
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def generate(model, tokenizer, prompts: list, max_new_tokens: int = 32, batch_size: int = 16) -> list[str]:
    """Greedy completions of `prompts` (strings, or conversational message lists rendered with the chat
    template and its generation prompt), special tokens dropped."""
    import torch

    texts = [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False) if isinstance(p, list)
             else p for p in prompts]
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: list[str] = []
    try:
        for i in range(0, len(texts), batch_size):
            batch = tokenizer(texts[i:i + batch_size], return_tensors="pt", padding=True,
                              add_special_tokens=False).to(device)
            with torch.no_grad():
                ids = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, use_cache=True,
                                     pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
            out += tokenizer.batch_decode(ids[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return out
