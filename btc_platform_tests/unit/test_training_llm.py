"""LLM trainers (SFT, DPO, GRPO/DAPO with LoRA) on a tiny random model built offline.

Each trainer is shown to learn a task a tiny model can learn in a few dozen steps: SFT one fixed
answer, DPO one fixed preference, GRPO/DAPO a reward for one action (after a short SFT warm start that
lets the random model write answers at all). Trainers run in-process through `runtime.execute`
(track=False); one run goes through Dagster Pipes in a subprocess and registers in MLflow.
Every run uses one torch thread (`cpu_threads`): on a small shared machine two threads per process
slow these tiny models down tens of times.
"""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may download

from btc_platform.datasets.instructions import SYSTEM_PROMPT  # noqa: E402
from btc_platform.datasets.preferences import ACTION_SYSTEM, PreferenceSpec  # noqa: E402
from btc_platform.llm.tiny_model import build_tiny_model, load_base_model, texts_from_dataset  # noqa: E402
from btc_platform.training import dpo_lora, grpo_dapo, llm_common, runtime, sft_lora  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
ANSWER = "HOLD: no trade for the next 24 hours."
REJECTED = "BUY at market (last close {close:,.2f}), close the position after 24 hours."
WARM_ANSWERS = [" HOLD.", " BUY.", " SELL."]  # the GRPO warm start is taught each equally often
ACTIONS = PreferenceSpec().actions()
ONE_THREAD = {"cpu_threads": 1}
SFT_PARAMS = {**ONE_THREAD, "max_steps": 30, "learning_rate": 5e-3, "per_device_train_batch_size": 8,
              "max_eval_rows": 8}
DPO_PARAMS = {**ONE_THREAD, "max_steps": 20, "learning_rate": 5e-3, "per_device_train_batch_size": 4}
GRPO_PARAMS = {**ONE_THREAD, "max_steps": 24, "learning_rate": 2e-3, "num_generations": 8,
               "per_device_train_batch_size": 16, "max_completion_length": 12, "eval_prompts": 8}
GRPO_TIES = 8  # train rows whose candidates all score the same (dynamic sampling drops them)


def close(i: int) -> float:
    return 40_000 + 37.5 * i


def state(i: int) -> str:
    return f"Market state for BTC-USD at hour {i}: close {close(i):,.2f}; RSI {30 + i % 40}; MACD above signal"


def chat_prompt(i: int) -> list[dict]:
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": f"{state(i)}. Decide."}]


def action_prompt(i: int) -> str:  # the shape of preferences.prompt_text
    return f"{ACTION_SYSTEM}\n\n{state(i)}.\nAction:"


SPLITS = {"train": range(0, 32), "validation": range(100, 108), "test": range(200, 208)}


def write_dataset(root: Path, files: dict, version: str) -> Path:
    """A published dataset version: its files and a manifest listing them."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, pd.DataFrame):
            content.to_parquet(path, index=False)
        else:
            path.write_text("".join(json.dumps(r) + "\n" for r in content))
    (root / "manifest.json").write_text(json.dumps({"version": version, "files": sorted(files) + ["manifest.json"]}))
    return root


def grpo_frame(rows: range, ties: int = 0) -> pd.DataFrame:
    """score_hold 1, every other action 0; the first `ties` rows score all candidates the same (one of
    them with a single scored candidate, the rest NaN) and teach nothing."""
    out = []
    for k, i in enumerate(rows):
        row = {"prompt": action_prompt(i), "symbol": "BTC-USD", "close": close(i)}
        row.update({f"score_{a}": 0.0 for a in ACTIONS})
        if k >= ties:
            row["score_hold"] = 1.0
        elif k == 0:
            row.update({f"score_{a}": float("nan") for a in ACTIONS if a != "hold"})
        out.append(row)
    return pd.DataFrame(out)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("llm")
    answer = [{"role": "assistant", "content": ANSWER}]
    sft = write_dataset(root / "sft", {
        f"prompt_completion/{s}.jsonl": [{"prompt": chat_prompt(i), "completion": answer} for i in r]
        for s, r in SPLITS.items()}, "sft-v1")
    messages = write_dataset(root / "messages", {
        f"messages/{s}.jsonl": [{"messages": [*chat_prompt(i), {"role": "assistant", "content": ANSWER}]} for i in r]
        for s, r in SPLITS.items()}, "msg-v1")
    dpo = write_dataset(root / "dpo", {
        f"dpo/{s}.jsonl": [{"prompt": action_prompt(i), "chosen": " " + ANSWER,
                            "rejected": " " + REJECTED.format(close=close(i)), "reward": 0.0, "score_margin": 1.0,
                            "chosen_action": "hold", "rejected_action": "buy", "symbol": "BTC-USD"} for i in r]
        for s, r in SPLITS.items()}, "dpo-v1")
    grpo = write_dataset(root / "grpo", {"grpo/train.parquet": grpo_frame(range(0, 32 + GRPO_TIES), GRPO_TIES),
                                         "grpo/validation.parquet": grpo_frame(SPLITS["validation"]),
                                         "grpo/test.parquet": grpo_frame(SPLITS["test"])}, "grpo-v1")
    warm = write_dataset(root / "warm", {
        f"prompt_completion/{s}.jsonl": [{"prompt": action_prompt(i), "completion": a} for i in r for a in WARM_ANSWERS]
        for s, r in {"train": range(0, 16), "validation": range(100, 102)}.items()}, "warm-v1")
    texts = [t for d in (sft, dpo, warm) for t in texts_from_dataset(d)]
    texts += [action_prompt(i) for i in range(0, 240)]
    base = build_tiny_model(texts, root / "tiny")
    return {"root": root, "sft": sft, "messages": messages, "dpo": dpo, "grpo": grpo, "warm": warm, "base": base}


def execute(module, dataset: Path, model_dir: Path, base: Path, params: dict) -> dict:
    request = runtime.TrainRequest(model=module.MODEL, dataset_url=str(dataset), model_url=str(model_dir),
                                   params=params, base_model=str(base))
    return runtime.execute(request, module.train, module.DEFAULT_PARAMS, logging.getLogger(module.MODEL),
                           track=False)


def assert_published(model_dir: Path, figures: dict) -> None:
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "metrics.json",
                 "model_card.json", "README.md"):
        assert (model_dir / name).is_file(), name
    saved = json.loads((model_dir / "metrics.json").read_text())
    card = json.loads((model_dir / "model_card.json").read_text())
    assert card["metrics"] == saved and card["device"] == figures["device"] in ("cpu", "cuda")
    assert 0 < figures["trainable_params"] < figures["total_params"]


# ---- SFT --------------------------------------------------------------------------------------

def test_sft_learns_the_fixed_answer_and_the_saved_adapter_says_it(data, tmp_path):
    test_prompts = [chat_prompt(i) for i in SPLITS["test"]]
    base_model, base_tok = load_base_model(str(data["base"]))
    assert all(a != ANSWER for a in llm_common.generate(base_model, base_tok, test_prompts, max_new_tokens=16))

    model_dir = tmp_path / "sft"
    figures = execute(sft_lora, data["sft"], model_dir, data["base"], SFT_PARAMS)
    assert figures["steps"] == 30 and figures["dataset_files"] == "prompt_completion/"
    assert figures["train_loss_last"] < figures["train_loss_first"] - 0.8  # ~5.8 -> ~4.6 nats/token
    assert figures["eval_loss"] < figures["train_loss_first"] - 0.8
    assert figures["train_token_accuracy_last"] == 1.0 and figures["eval_token_accuracy"] == 1.0
    assert figures["tokens_per_s"] > 0 and figures["train_rows"] == 32 and figures["eval_rows"] == 8
    assert figures["train_rows_at_max_length"] == 0
    assert_published(model_dir, figures)

    model, tokenizer = llm_common.load_trained(model_dir)  # base from adapter_config + the adapter
    assert llm_common.generate(model, tokenizer, test_prompts, max_new_tokens=16) == [ANSWER] * len(test_prompts)


def test_sft_falls_back_to_messages_files(data, tmp_path):
    figures = execute(sft_lora, data["messages"], tmp_path / "m", data["base"],
                      {**SFT_PARAMS, "max_steps": 4, "max_eval_rows": 4})
    assert figures["dataset_files"] == "messages/" and figures["steps"] == 4
    assert figures["train_loss_last"] < figures["train_loss_first"]
    # a manifest without a file list: the folder decides
    stems, splits = ["prompt_completion", "messages"], ["train", "validation"]
    assert llm_common.choose_stem({"version": "x"}, stems, splits, "jsonl", str(data["messages"])) == "messages"
    assert llm_common.choose_stem({"version": "x"}, stems, splits, "jsonl", str(data["sft"])) == "prompt_completion"


# ---- DPO --------------------------------------------------------------------------------------

def test_dpo_reward_margin_rises(data, tmp_path):
    model_dir = tmp_path / "dpo"
    figures = execute(dpo_lora, data["dpo"], model_dir, data["base"], DPO_PARAMS)
    assert figures["steps"] == 20 and figures["train_pairs"] == 32
    assert figures["reward_margin_first"] == pytest.approx(0.0, abs=1e-6)  # the adapter starts as a no-op
    assert figures["reward_margin_last"] > figures["reward_margin_first"] + 0.5
    assert figures["reward_accuracy_last"] == 1.0
    assert figures["train_loss_last"] < 0.5 < figures["train_loss_first"]  # log 2 = 0.693 at the start
    assert figures["eval_reward_margin"] > 0.5 and figures["eval_loss"] < 0.5
    assert figures["pairs_per_s"] > 0
    assert_published(model_dir, figures)


# ---- GRPO / DAPO ------------------------------------------------------------------------------

def test_dapo_reward_function_reads_score_columns():
    logged = {}
    reward = grpo_dapo.make_reward(-0.05)
    columns = {"score_hold": [1.0, 1.0, 1.0, 1.0], "score_buy": [0.3, 0.3, float("nan"), 0.3],
               "symbol": ["BTC-USD"] * 4}
    completions = [" HOLD.", [{"role": "assistant", "content": "BUY at market"}], "BUY.", "gibberish"]
    assert reward(completions, log_metric=lambda k, v: logged.update({k: v}), **columns) == \
        pytest.approx([1.0, 0.3, -0.05, -0.05])  # the third's buy was never scored
    assert logged == {"invalid_rate": 0.5}
    assert grpo_dapo.scores_can_differ({"score_hold": 0.0, "score_buy": 1e-3})
    assert not grpo_dapo.scores_can_differ({"score_hold": 0.0, "score_buy": 0.0, "score_sell": 1e-13})
    assert not grpo_dapo.scores_can_differ({"score_hold": 0.5, "score_buy": float("nan")})


def sharpened(base: Path, out: Path, factor: float = 8.0) -> Path:
    """The tiny model with its final RMSNorm scaled up. build_tiny_model's random init (std 0.02, hidden 64,
    tied embeddings) caps every logit near +-1.3, so sampling at temperature 1 stays close to uniform over
    the vocabulary however well the adapter learns; scaled by 8, logits span what a real LM's do."""
    import torch

    model, tokenizer = load_base_model(str(base))
    with torch.no_grad():
        model.model.norm.weight.mul_(factor)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_grpo_dapo_raises_the_reward_and_drops_uninformative_prompts(data, tmp_path):
    # A random model seldom writes a valid answer: a short SFT warm start teaches it to answer BUY, SELL or
    # HOLD, each equally often; DAPO must then find out that HOLD is the one that pays.
    sharp = sharpened(data["base"], tmp_path / "sharp")
    warm = execute(sft_lora, data["warm"], tmp_path / "warm", sharp, {**SFT_PARAMS, "max_eval_rows": 4})
    assert warm["train_loss_last"] < warm["train_loss_first"]
    base = llm_common.merge_adapter(tmp_path / "warm", tmp_path / "warm_base")

    model_dir = tmp_path / "grpo"
    figures = execute(grpo_dapo, data["grpo"], model_dir, base, GRPO_PARAMS)
    assert (figures["loss_type"], figures["epsilon"], figures["epsilon_high"], figures["beta"],
            figures["mask_truncated_completions"]) == ("dapo", 0.2, 0.28, 0.0, True)
    assert figures["prompts_dropped_dynamic_sampling"] == GRPO_TIES and figures["train_prompts"] == 32
    assert figures["steps"] == 24 and figures["completions"] == 24 * 16
    # mean over the first / last 5 steps: ~0.25 (a third of the answers say HOLD) -> ~0.9
    assert figures["mean_reward_late"] > max(0.7, figures["mean_reward_early"] + 0.4)
    assert figures["mean_reward_last"] > figures["mean_reward_first"]
    assert figures["invalid_rate_late"] < figures["invalid_rate_early"]
    assert figures["eval_mean_reward"] > 0.75  # greedy answers to held-out prompts
    assert figures["completions_per_s"] > 0
    assert_published(model_dir, figures)


# ---- Dagster Pipes and MLflow -----------------------------------------------------------------

def test_sft_through_dagster_pipes_registers_in_mlflow(data, tmp_path):
    model_dir, uri = tmp_path / "models" / "sft", f"sqlite:///{tmp_path / 'mlflow.db'}"
    params = {**SFT_PARAMS, "max_steps": 5, "max_eval_rows": 4}

    @dg.asset
    def sft_lora_1h(context: dg.AssetExecutionContext):
        return dg.PipesSubprocessClient().run(
            command=[sys.executable, "-m", "btc_platform.training.sft_lora"], context=context, cwd=str(REPO),
            extras={"dataset_dir": str(data["sft"]), "model_dir": str(model_dir), "base_model": str(data["base"]),
                    "params": params},
            env={"MLFLOW_TRACKING_URI": uri, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
        ).get_materialize_result()

    result = dg.materialize([sft_lora_1h])
    assert result.success
    (mat,) = result.asset_materializations_for_node("sft_lora_1h")
    md = {k: v.value for k, v in mat.metadata.items()}
    saved = json.loads((model_dir / "metrics.json").read_text())
    for key in ("train_loss_first", "train_loss_last", "eval_loss", "tokens_per_s"):
        assert md[key] == pytest.approx(saved[key])
    assert md["train_loss_last"] < md["train_loss_first"] and md["steps"] == 5
    assert md["device"] in ("cpu", "cuda") and md["dataset_version"] == "sft-v1"
    assert md["model_path"] == str(model_dir) and md["registered_version"] == 1

    from mlflow import MlflowClient

    (version,) = MlflowClient(tracking_uri=uri).search_model_versions("name = 'sft_lora_1h'")
    assert version.run_id == md["mlflow_run_id"]
    assert MlflowClient(tracking_uri=uri).get_run(version.run_id).data.metrics["train_loss_last"] == \
        pytest.approx(saved["train_loss_last"])


# ---- failures ---------------------------------------------------------------------------------

def run_main(module, capsys, dataset: Path, model_dir: Path, base: Path, params: dict | None = None) -> tuple[int, str]:
    code = module.main(["--dataset-dir", str(dataset), "--model-dir", str(model_dir), "--base-model", str(base),
                        "--params", json.dumps({**ONE_THREAD, **(params or {})}), "--no-mlflow"])
    return code, capsys.readouterr().err


def test_missing_base_model_folder_exits_2(data, tmp_path, capsys):
    missing = tmp_path / "no_such_model"
    code, err = run_main(sft_lora, capsys, data["sft"], tmp_path / "model", missing)
    assert code == 2 and "base model folder not found" in err and str(missing) in err
    assert not (tmp_path / "model").exists()


def test_empty_train_split_exits_2(data, tmp_path, capsys):
    dataset = write_dataset(tmp_path / "ds", {"dpo/train.jsonl": [], "dpo/validation.jsonl": [
        {"prompt": "p", "chosen": " a", "rejected": " b"}]}, "empty-v1")
    code, err = run_main(dpo_lora, capsys, dataset, tmp_path / "model", data["base"])
    assert code == 2 and "split 'train' is empty" in err and "dpo/train.jsonl" in err
    assert not (tmp_path / "model").exists()


def test_corrupt_and_uninformative_files_exit_2(data, tmp_path, capsys):
    bad = write_dataset(tmp_path / "bad", {"prompt_completion/train.jsonl": [],
                                           "prompt_completion/validation.jsonl": []}, "bad-v1")
    (bad / "prompt_completion/train.jsonl").write_text('{"prompt": "a", "completion": "b"}\n{not json\n')
    code, err = run_main(sft_lora, capsys, bad, tmp_path / "m1", data["base"])
    assert code == 2 and "corrupt dataset file" in err and "train.jsonl: line 2" in err

    ties = write_dataset(tmp_path / "ties", {"grpo/train.parquet": grpo_frame(range(4), ties=4)}, "ties-v1")
    code, err = run_main(grpo_dapo, capsys, ties, tmp_path / "m2", data["base"], {"eval_prompts": 0})
    assert code == 2 and "nothing to learn" in err and "grpo/train.parquet" in err

    no_dpo = write_dataset(tmp_path / "nodpo", {"grpo/train.parquet": grpo_frame(range(4))}, "x-v1")
    code, err = run_main(dpo_lora, capsys, no_dpo, tmp_path / "m3", data["base"])
    assert code == 2 and "dpo/{train,validation}.jsonl" in err
    assert not any((tmp_path / m).exists() for m in ("m1", "m2", "m3"))


def test_dataset_without_manifest_exits_2_from_the_command_line(data, tmp_path):
    dataset = tmp_path / "unfinished"
    write_dataset(dataset, {"dpo/train.jsonl": [{"prompt": "p", "chosen": " a", "rejected": " b"}]}, "u-v1")
    (dataset / "manifest.json").unlink()
    proc = subprocess.run([sys.executable, "-m", "btc_platform.training.dpo_lora", "--dataset-dir", str(dataset),
                           "--model-dir", str(tmp_path / "model"), "--base-model", str(data["base"]), "--no-mlflow"],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 2, proc.stderr
    assert "manifest.json" in proc.stderr and str(dataset) in proc.stderr
    assert not (tmp_path / "model").exists()
