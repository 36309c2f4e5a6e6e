"""The tiny offline base model: built in about a second, loaded like any base model, deterministic."""

import json
import os

import pytest

from btc_platform.datasets.preferences import ACTION_SYSTEM, PreferenceSpec, action_text
from btc_platform.llm.tiny_model import build_tiny_model, load_base_model, main, texts_from_dataset

MESSAGES = [{"role": "system", "content": ACTION_SYSTEM},
            {"role": "user", "content": "Market state for BTC-USD at 2024-01-02 00:00 UTC: close 42,000.00."}]


def sample_texts() -> list[str]:
    actions = PreferenceSpec(limit_offsets_bps=(12.5, 25.0, 50.0)).actions()
    closes = [42_000.0 + 137.5 * i for i in range(4)]
    states = [f"Market state for BTC-USD: close {c:,.2f}; RSI {30 + i}, neutral." for i, c in enumerate(closes)]
    return [ACTION_SYSTEM, *states, *(action_text(a, c) for c in closes for a in actions)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = build_tiny_model(sample_texts(), tmp_path_factory.mktemp("models") / "tiny")
    model, tok = load_base_model(str(out))
    return out, model, tok


def test_folder_contents(tiny):
    out, model, tok = tiny
    names = set(os.listdir(out))
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "tiny_model.json"} <= names
    info = json.loads((out / "tiny_model.json").read_text())
    assert info["randomly_initialised"] is True and info["texts"] == len(sample_texts())
    assert info["vocab_size"] == len(tok) == model.config.vocab_size <= 512
    assert (model.config.hidden_size, model.config.num_hidden_layers) == (64, 2)
    assert not [p for p in os.listdir(out.parent) if p.startswith(".")]  # no temp folders left behind


def test_tokenizer_round_trips_and_matches_the_trained_one(tiny):
    from tokenizers import Tokenizer

    out, _, tok = tiny
    raw = Tokenizer.from_file(str(out / "tokenizer.json"))
    for text in [*sample_texts()[:6], "I'm 2024-01-01 ?! café  \t x\n\n y", MESSAGES[1]["content"]]:
        ids = tok(text)["input_ids"]
        assert tok.decode(ids) == text
        assert ids == raw.encode(text).ids  # AutoTokenizer loads what was trained (see _train_tokenizer)
    assert (tok.eos_token, tok.pad_token) == ("<|im_end|>", "<|pad|>")
    assert tok.pad_token_id != tok.eos_token_id


def test_chat_template(tiny):
    _, _, tok = tiny
    prompt = tok.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert prompt == (f"<|im_start|>system\n{ACTION_SYSTEM}<|im_end|>\n<|im_start|>user\n{MESSAGES[1]['content']}"
                      "<|im_end|>\n<|im_start|>assistant\n")
    assert tok.apply_chat_template(MESSAGES, tokenize=False).endswith("<|im_end|>\n")
    completion = [{"role": "assistant", "content": action_text("limit_buy_25bps", 42_000.0)}]
    full = tok.apply_chat_template(MESSAGES + completion, tokenize=True, return_dict=True,
                                   return_assistant_tokens_mask=True)
    prompt_ids = tok.apply_chat_template(MESSAGES, tokenize=True, add_generation_prompt=True,
                                         return_dict=True)["input_ids"]
    # TRL's completion-only loss needs the prompt as a prefix of prompt+completion; its assistant-only
    # loss needs {% generation %} markers covering the answer and the <|im_end|> that stops it.
    assert full["input_ids"][:len(prompt_ids)] == prompt_ids
    masked = [i for i, m in zip(full["input_ids"], full["assistant_masks"], strict=True) if m]
    assert tok.decode(masked) == completion[0]["content"] + "<|im_end|>\n"
    assert set(full["assistant_masks"][:len(prompt_ids)]) == {0}


def test_model_generates(tiny):
    import torch

    _, model, tok = tiny
    inputs = tok.apply_chat_template(MESSAGES, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert out.shape == (1, inputs["input_ids"].shape[1] + 4)
    assert isinstance(tok.decode(out[0, inputs["input_ids"].shape[1]:]), str)


def test_build_is_deterministic_and_replaces_in_place(tmp_path, tiny):
    built, _, _ = tiny
    out = tmp_path / "tiny"
    build_tiny_model(sample_texts(), out)
    first = (out / "model.safetensors").read_bytes()
    assert first == (built / "model.safetensors").read_bytes()
    assert (out / "tokenizer.json").read_bytes() == (built / "tokenizer.json").read_bytes()
    assert build_tiny_model(sample_texts(), out) == out  # rebuilt over an existing model folder
    assert (out / "model.safetensors").read_bytes() == first
    assert os.listdir(tmp_path) == ["tiny"]
    build_tiny_model(sample_texts(), out, seed=1)
    assert (out / "model.safetensors").read_bytes() != first


def test_refuses_to_replace_a_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a model folder"):
        build_tiny_model(["some text"], tmp_path / "notes")
    with pytest.raises(ValueError, match="no texts"):
        build_tiny_model([], tmp_path / "empty")


def test_missing_folder_names_the_path(tmp_path):
    missing = tmp_path / "no_model_here"
    with pytest.raises(FileNotFoundError, match="base model folder not found") as info:
        load_base_model(str(missing))
    assert str(missing) in str(info.value) and "btc_platform.llm.tiny_model" in str(info.value)
    missing.mkdir()  # a folder without config.json is no model either
    with pytest.raises(FileNotFoundError, match=str(missing)):
        load_base_model(str(missing))


def test_hub_id_offline_names_the_id(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="btc-platform-tests/no-such-model") as info:
        load_base_model("btc-platform-tests/no-such-model")
    assert "not found locally" in str(info.value)


def test_texts_from_dataset_and_cli(tmp_path, capsys):
    version = tmp_path / "datasets" / "llm" / "version=abc"
    rows = {
        "prompt_completion/train.jsonl": [{"prompt": [{"role": "system", "content": "SYS"},
                                                      {"role": "user", "content": "Predict BTC."}],
                                           "completion": [{"role": "assistant", "content": '{"r": 0.1}'}]}],
        "dpo/train.jsonl": [{"prompt": "P1", "chosen": " BUY", "rejected": " SELL", "reward": 0.1}],
        "dpo/validation.jsonl": [{"prompt": "P1", "chosen": " HOLD", "rejected": " SELL", "reward": 0.0}],
        "grpo/train.jsonl": [{"prompt": "P2", "score_buy": 0.1}],
        "alpaca/train.jsonl": [{"instruction": "I", "input": "{}", "output": None}],
        "messages/train.jsonl": [{"messages": [{"role": "user", "content": "not read"}]}],
    }
    for name, records in rows.items():
        (version / name).parent.mkdir(parents=True, exist_ok=True)
        (version / name).write_text("".join(json.dumps(r) + "\n" for r in records))
    texts = texts_from_dataset(version)
    assert texts == ["SYS", "Predict BTC.", '{"r": 0.1}', "P1", " BUY", " SELL", " HOLD", "P2", "I", "{}"]
    with pytest.raises(FileNotFoundError):
        texts_from_dataset(tmp_path / "nothing")

    extra = tmp_path / "extra.txt"
    extra.write_text("\n".join(sample_texts()))
    out = main(["--out", str(tmp_path / "cli_model"), "--dataset-dir", str(version), "--text-file", str(extra)])
    assert capsys.readouterr().out.strip() == str(out)
    assert json.loads((out / "tiny_model.json").read_text())["texts"] == len(texts) + len(sample_texts())
