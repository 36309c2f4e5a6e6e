"""A tiny, randomly initialised Qwen2-style base model built offline, and the one loader for base models.

No hub is reachable on the build machines, so tests and demos cannot download a model. This module
trains a byte-level BPE tokenizer on the platform's own dataset text (about a second), gives it a
Qwen-style ChatML chat template, builds a two-layer `Qwen2ForCausalLM` and saves both to a folder.
Trainers then load it with `load_base_model`, the same `from_pretrained` path a real base model (a
hub id or a mounted folder) goes through. The model is random: it exercises the machinery, it does
not trade.

    python -m btc_platform.llm.tiny_model --out models/tiny --dataset-dir <root>/<dataset>/version=<v>

torch/transformers/tokenizers are imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from btc_platform.folders import replace_folder

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]
EOS, PAD, BOS = "<|im_end|>", "<|pad|>", "<|endoftext|>"
INFO_FILE = "tiny_model.json"

# Qwen-style ChatML without a default system prompt. The assistant's content and its closing
# <|im_end|> sit inside {% generation %} ... {% endgeneration %}: TRL's SFT `assistant_only_loss=True`
# needs these markers (it can patch in markers only for templates it recognises, and raises
# otherwise), and its stop-token check wants <|im_end|> inside them so the model learns to stop. The
# generation prompt renders exactly like the start of an assistant turn, so a tokenized prompt is a
# prefix of prompt+completion (what SFT's completion-only loss on prompt/completion rows relies on).
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- generation %}"
    "{{- (message['content'] or '') + '<|im_end|>\\n' }}"
    "{%- endgeneration %}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + (message['content'] or '') + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}"
)

BUILD_HINT = ("build a tiny offline one with `python -m btc_platform.llm.tiny_model --out {path} "
              "--dataset-dir <dataset version folder>`, or point to a folder holding config.json and weights")


# ---- building -------------------------------------------------------------------------------

def _train_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    # AutoTokenizer loads any model_type "qwen2" folder as Qwen2Tokenizer, which rebuilds the tokenizer
    # from vocab + merges with Qwen's NFC normalizer and pre-tokenizer (a regex split, then byte-level
    # without GPT-2's regex), whatever tokenizer.json says. Training with exactly those keeps the
    # tokenizer we train and the one every trainer loads the same.
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD, bos_token=None,
                                   unk_token=None, model_max_length=2048)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _build_into(folder: Path, texts: list[str], vocab_size: int, hidden_size: int, layers: int, seed: int) -> dict:
    import torch
    import transformers
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tok = _train_tokenizer(texts, vocab_size)
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = Qwen2Config(hidden_size=hidden_size, intermediate_size=2 * hidden_size, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, vocab_size=len(tok),
                         max_position_embeddings=2048, tie_word_embeddings=True, max_window_layers=layers,
                         pad_token_id=ids[PAD], eos_token_id=ids[EOS], bos_token_id=ids[BOS], dtype="float32")
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(bos_token_id=ids[BOS], eos_token_id=ids[EOS], pad_token_id=ids[PAD])
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    info = {
        "description": "Tiny randomly initialised Qwen2-style causal LM with a byte-level BPE tokenizer trained on "
                       "the given texts; built offline by btc_platform.llm.tiny_model for tests and demos. "
                       "It has learned nothing.",
        "randomly_initialised": True, "architecture": "Qwen2ForCausalLM", "seed": seed,
        "texts": len(texts), "vocab_size": len(tok), "requested_vocab_size": vocab_size,
        "hidden_size": hidden_size, "intermediate_size": 2 * hidden_size, "layers": layers,
        "attention_heads": 4, "key_value_heads": 2, "max_position_embeddings": 2048,
        "parameters": sum(p.numel() for p in model.parameters()),
        "special_tokens": ids, "eos_token": EOS, "pad_token": PAD, "chat_template": "ChatML (Qwen style)",
        "versions": {"torch": torch.__version__.split("+")[0], "transformers": transformers.__version__},
    }
    (folder / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return info


def build_tiny_model(texts: Iterable[str], out_dir: str | Path, *, vocab_size: int = 512, hidden_size: int = 64,
                     layers: int = 2, seed: int = 0) -> Path:
    """Train the tokenizer on `texts`, build the random model, save both to `out_dir` and return it.

    Built in a temporary sibling folder and renamed into place, so a half-built folder never appears; an
    existing model folder (one with config.json) is replaced atomically. Same texts + seed, same bytes.
    """
    texts = [t for t in texts if isinstance(t, str) and t]
    if not texts:
        raise ValueError("no texts to train the tokenizer on")
    if hidden_size % 4:
        raise ValueError(f"hidden_size must be a multiple of the 4 attention heads, got {hidden_size}")
    out = Path(out_dir).absolute()
    if out.exists() and not (out.is_dir() and ((out / "config.json").exists() or not any(out.iterdir()))):
        raise FileExistsError(f"{out} exists and is not a model folder (no config.json): not replacing it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        _build_into(tmp, texts, vocab_size, hidden_size, layers, seed)
        replace_folder(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


# ---- texts ----------------------------------------------------------------------------------

DATASET_FIELDS = {
    "prompt_completion": ("prompt", "completion"),
    "dpo": ("prompt", "chosen", "rejected"),
    "grpo": ("prompt",),
    "alpaca": ("instruction", "input", "output"),
}


def _strings(value) -> list[str]:
    """Strings in a field: a string, or (TRL conversational) messages with `content`."""
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, dict):
        return _strings(value.get("content"))
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def texts_from_dataset(dataset_dir: str | Path) -> list[str]:
    """The training text of a published dataset version folder (local): message contents of
    prompt_completion/, prompt/chosen/rejected of dpo/, prompts of grpo/, instruction/input/output of
    alpaca/ (*.jsonl, those present), in a stable order, duplicates dropped."""
    root = Path(dataset_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    seen: dict[str, None] = {}
    for stem, fields in DATASET_FIELDS.items():
        for path in sorted((root / stem).glob("*.jsonl")):
            with path.open(encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        row = json.loads(line)
                        for field in fields:
                            seen.update(dict.fromkeys(_strings(row.get(field))))
    return list(seen)


# ---- loading --------------------------------------------------------------------------------

def _looks_like_path(name: str) -> bool:
    # A hub id is "name" or "org/name"; anything else (absolute, ./, ~, deeper, or present on disk) is a folder.
    return (name.startswith((".", "/", "~")) or name.count("/") > 1 or (os.sep != "/" and os.sep in name)
            or os.path.exists(name))


def load_base_model(name_or_path: str, *, device: str | None = None, dtype=None):
    """(model, tokenizer) for a hub id or a local folder, through the same `from_pretrained` calls.

    A folder that is missing or lacks config.json raises FileNotFoundError naming it. A hub id is
    looked up in the local cache only when HF_HUB_OFFLINE=1; not finding it raises FileNotFoundError
    naming the id. The tokenizer gets a pad token (its eos) when it has none.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name = str(name_or_path)
    kwargs: dict = {}
    if dtype is not None:
        kwargs["dtype"] = dtype
    if _looks_like_path(name):
        path = Path(name).expanduser()
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"base model folder not found: {path} ({BUILD_HINT.format(path=path)})")
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    else:
        offline = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")
        if offline:
            kwargs["local_files_only"] = True
        try:
            tok = AutoTokenizer.from_pretrained(name, **({"local_files_only": True} if offline else {}))
            model = AutoModelForCausalLM.from_pretrained(name, **kwargs)
        except OSError as exc:
            raise FileNotFoundError(
                f"base model {name!r} was not found locally and the hub could not be reached"
                f"{' (HF_HUB_OFFLINE=1)' if offline else ''}: {exc}. Use a local folder instead "
                f"({BUILD_HINT.format(path='models/tiny')})") from exc
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    for cfg in (model.config, model.generation_config):
        if cfg is not None and getattr(cfg, "pad_token_id", None) is None:
            cfg.pad_token_id = tok.pad_token_id
    if device is not None:
        model.to(device)
    return model, tok


# ---- CLI ------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description="Build a tiny random Qwen2-style base model offline.")
    p.add_argument("--out", required=True, help="folder to write (replaced if it holds a model)")
    p.add_argument("--dataset-dir", action="append", default=[], help="published dataset version folder (repeatable)")
    p.add_argument("--text-file", action="append", default=[], help="text file, one text per line (repeatable)")
    p.add_argument("--vocab-size", type=int, default=512)
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    texts = [t for d in args.dataset_dir for t in texts_from_dataset(d)]
    for f in args.text_file:
        texts += [line for line in Path(f).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not texts:
        p.error("no texts: pass --dataset-dir and/or --text-file")
    out = build_tiny_model(texts, args.out, vocab_size=args.vocab_size, hidden_size=args.hidden_size,
                           layers=args.layers, seed=args.seed)
    print(out)
    return out


if __name__ == "__main__":
    main()
