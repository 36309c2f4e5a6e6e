"""The LLM evaluation (`btc_platform.evaluation.llm_eval`) on a tiny SFT adapter that always answers HOLD.

The preference version's reward columns are built so that every figure is known in advance: HOLD earns
0, a market buy pays best on validation but a market sell pays best on test, so the best fixed action
must be the one chosen on validation (buy). Files are written in reverse time order, so taking "the
first rows" must sort by `decision_at`. Everything runs in-process with one torch thread, except the
one command-line run that checks the exit code of an unfinished dataset version.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may download

from dagster_pipes import encode_param  # noqa: E402

from btc_platform.evaluation import llm_eval  # noqa: E402
from btc_platform.llm.tiny_model import build_tiny_model, texts_from_dataset  # noqa: E402
from btc_platform.training import sft_lora  # noqa: E402
from btc_platform_tests.unit.test_training_llm import (  # noqa: E402
    ACTIONS,
    ANSWER,
    REPO,
    SFT_PARAMS,
    action_prompt,
    close,
    execute,
    write_dataset,
)

FIXED = " " + ANSWER  # " HOLD: no trade for the next 24 hours."
ROWS = {"train": range(0, 8), "validation": range(100, 108), "test": range(200, 208)}
MAX_PROMPTS = 6  # of the 8 rows per split: the earliest 6
MAX_NEW_TOKENS = 16
# per split, market buy / sell scores alternate over rows (even row, odd row); hold 0, limits 0
BUY = {"train": (0.0, 0.0), "validation": (0.03, -0.01), "test": (0.005, -0.001)}
SELL = {"train": (0.0, 0.0), "validation": (-0.032, 0.008), "test": (0.03, 0.01)}


def pref_frame(split: str) -> pd.DataFrame:
    """GRPO rows of `split` in time order, then written newest first."""
    out = []
    for k, i in enumerate(ROWS[split]):
        row = {"prompt": action_prompt(i), "symbol": "BTC-USD",
               "decision_at": (pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(hours=i)).strftime(
                   "%Y-%m-%dT%H:%M:%SZ"), "close": close(i)}
        row.update({f"score_{a}": 0.0 for a in ACTIONS})
        row["score_buy"], row["score_sell"] = BUY[split][k % 2], SELL[split][k % 2]
        if split == "test" and k == 1:
            row["score_limit_buy_25bps"] = float("nan")  # an unscored candidate
        out.append(row)
    return pd.DataFrame(out).iloc[::-1].reset_index(drop=True)


def expected(split: str) -> pd.DataFrame:
    """The rows the evaluation must use: the earliest MAX_PROMPTS."""
    return pref_frame(split).sort_values("decision_at").head(MAX_PROMPTS)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import torch

    torch.set_num_threads(1)  # in-process evaluation; two threads slow a tiny model down on a shared machine
    root = tmp_path_factory.mktemp("llm_eval")
    sft = write_dataset(root / "sft", {
        f"prompt_completion/{s}.jsonl": [{"prompt": action_prompt(i), "completion": FIXED} for i in r]
        for s, r in {"train": range(0, 32), "validation": range(100, 104)}.items()}, "sft-v1")
    prefs = write_dataset(root / "prefs", {f"grpo/{s}.parquet": pref_frame(s) for s in ROWS}, "prefs-v1")
    texts = texts_from_dataset(sft) + [action_prompt(i) for r in ROWS.values() for i in r]
    base = build_tiny_model(texts, root / "tiny")
    model_dir = root / "models" / "sft"
    figures = execute(sft_lora, sft, model_dir, base, {**SFT_PARAMS, "max_eval_rows": 4})
    assert figures["train_loss_last"] < figures["train_loss_first"]
    return {"root": root, "prefs": prefs, "base": base, "model_dir": model_dir}


def test_fixed_hold_adapter_is_judged_against_baselines(setup):
    model_dir, before = setup["model_dir"], {p.name for p in setup["model_dir"].iterdir()}
    result = llm_eval.evaluate_llm(str(model_dir), str(setup["prefs"]), max_prompts=MAX_PROMPTS,
                                   max_new_tokens=MAX_NEW_TOKENS)
    assert set(result) == {"model", "model_url", "preferences_url", "device", "validation", "test",
                           "best_fixed_action", "examples"}
    assert result["model"] == sft_lora.MODEL and result["device"] in ("cpu", "cuda")
    # chosen on validation (buy pays there), although sell pays best on test
    val, test = expected("validation"), expected("test")
    assert result["best_fixed_action"] == "buy"
    assert test["score_sell"].mean() > test["score_buy"].mean()
    for split, rows in (("validation", val), ("test", test)):
        fig = result[split]
        assert set(fig) == set(llm_eval.SPLIT_KEYS)
        assert fig["n"] == MAX_PROMPTS
        assert fig["action_counts"].get("hold", 0) >= MAX_PROMPTS - 1, fig["action_counts"]
        assert fig["invalid_rate"] <= 1 / MAX_PROMPTS
        assert fig["mean_reward"] == pytest.approx(fig["hold_mean_reward"]) == pytest.approx(0.0)
        assert fig["always_buy_mean_reward"] == pytest.approx(rows["score_buy"].mean())
        assert fig["best_fixed_mean_reward"] == pytest.approx(rows["score_buy"].mean())
        assert fig["oracle_mean_reward"] == pytest.approx(rows[[f"score_{a}" for a in ACTIONS]].max(axis=1).mean())
        assert fig["oracle_mean_reward"] >= fig["best_fixed_mean_reward"] >= fig["mean_reward"]
        assert fig["latency_ms_mean"] > 0 and fig["latency_ms_p50"] > 0
        assert fig["latency_ms_p95"] >= fig["latency_ms_p50"] and fig["answers_per_s"] > 0
    assert result["validation"]["oracle_mean_reward"] > result["validation"]["best_fixed_mean_reward"] > 0
    # the first three test rows in time order
    assert len(result["examples"]) == 3
    for example, i in zip(result["examples"], ROWS["test"]):
        assert f"hour {i}:" in example["prompt_tail"] and example["prompt_tail"].endswith("Action:")
        assert example["action"] == "hold" and example["reason"] is None and example["reward"] == 0.0
        assert example["answer"].strip() == ANSWER  # the adapter says its one answer
    # evaluation.json is the one file added to the model version
    assert {p.name for p in model_dir.iterdir()} == before | {"evaluation.json"}
    assert json.loads((model_dir / "evaluation.json").read_text()) == json.loads(json.dumps(result))


def test_judge_counts_unscored_and_undecodable_answers_as_invalid():
    scores = {"hold": 0.0, "buy": 0.02}
    assert llm_eval.judge(" BUY at market.", scores) == ("buy", None, 0.02)
    name, reason, reward = llm_eval.judge(" SELL at market.", scores)
    assert (name, reward) == ("sell", 0.0) and "no score" in reason
    name, reason, reward = llm_eval.judge("maybe later", scores)
    assert name is None and reward == 0.0 and reason
    table = [{"hold": 0.0, "buy": 0.03, "sell": -0.03}, {"hold": 0.0, "buy": -0.01}]
    assert llm_eval.best_fixed_action(table, ["buy", "sell", "hold"]) == "buy"
    assert llm_eval.fixed_mean(table, "sell") == pytest.approx(-0.015)  # unscored counts 0
    assert llm_eval.oracle_mean(table) == pytest.approx(0.015)
    assert llm_eval.best_fixed_action([{"hold": 0.0, "buy": 0.0}], ["buy", "hold"]) == "hold"  # ties: no trade


def test_dagster_pipes_reports_flat_figures_and_the_cli_prints_json(setup, tmp_path, monkeypatch, capsys):
    # Pipes, in-process: the context and the messages file as Dagster's subprocess client would pass them
    messages = tmp_path / "messages.jsonl"
    context = {"asset_keys": ["llm_eval_sft"], "code_version_by_asset_key": None, "provenance_by_asset_key": None,
               "partition_key": None, "partition_key_range": None, "partition_time_window": None,
               "run_id": "test-run", "job_name": None, "retry_number": 0,
               "extras": {"model_url": str(setup["model_dir"]), "preferences_url": str(setup["prefs"]),
                          "max_prompts": 4, "max_new_tokens": 12}}
    monkeypatch.setenv("DAGSTER_PIPES_CONTEXT", encode_param({"data": context}))
    monkeypatch.setenv("DAGSTER_PIPES_MESSAGES", encode_param({"path": str(messages)}))
    assert llm_eval.main([]) == 0
    reports = [json.loads(line) for line in messages.read_text().splitlines()]
    (mat,) = [r["params"] for r in reports if r["method"] == "report_asset_materialization"]
    md = mat["metadata"]
    assert mat["asset_key"] == "llm_eval_sft"
    assert md["best_fixed_action"] == {"raw_value": "buy", "type": "text"}
    for key in ("test_mean_reward", "test_invalid_rate", "test_oracle_mean_reward", "validation_mean_reward",
                "test_best_fixed_mean_reward", "test_latency_ms_p95"):
        assert md[key]["type"] == "float", key
    assert md["test_n"] == {"raw_value": 4, "type": "int"} and md["test_action_counts"]["type"] == "json"
    assert md["test_oracle_mean_reward"]["raw_value"] >= md["test_mean_reward"]["raw_value"]
    saved = json.loads((setup["model_dir"] / "evaluation.json").read_text())
    assert saved["test"]["n"] == 4 and md["test_mean_reward"]["raw_value"] == saved["test"]["mean_reward"]

    # the command line, in-process: the result JSON is the last stdout line
    monkeypatch.delenv("DAGSTER_PIPES_CONTEXT")
    monkeypatch.delenv("DAGSTER_PIPES_MESSAGES")
    capsys.readouterr()
    assert llm_eval.main(["--model-url", str(setup["model_dir"]), "--preferences-url", str(setup["prefs"]),
                          "--max-prompts", "2", "--max-new-tokens", "12"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["validation"]["n"] == printed["test"]["n"] == 2 and printed["best_fixed_action"] == "buy"


def test_a_folder_without_an_adapter_exits_2(setup, tmp_path, capsys):
    empty = tmp_path / "no_model"
    empty.mkdir()
    for folder in (empty, setup["base"]):  # nothing at all; a random base model without an adapter
        code = llm_eval.main(["--model-url", str(folder), "--preferences-url", str(setup["prefs"])])
        err = capsys.readouterr().err
        assert code == 2 and "no trained LoRA adapter" in err and str(folder) in err and "adapter_config.json" in err
        assert not (folder / "evaluation.json").exists()


def test_missing_or_empty_splits_exit_2(setup, tmp_path, capsys):
    no_test = write_dataset(tmp_path / "no_test", {"grpo/validation.parquet": pref_frame("validation")}, "v1")
    code = llm_eval.main(["--model-url", str(setup["model_dir"]), "--preferences-url", str(no_test)])
    err = capsys.readouterr().err
    assert code == 2 and "split 'test' not found" in err and "grpo/test.parquet" in err
    empty = write_dataset(tmp_path / "empty", {"grpo/validation.parquet": pref_frame("validation").head(0),
                                               "grpo/test.parquet": pref_frame("test")}, "v1")
    code = llm_eval.main(["--model-url", str(setup["model_dir"]), "--preferences-url", str(empty)])
    err = capsys.readouterr().err
    assert code == 2 and "split 'validation' is empty" in err and "grpo/validation.parquet" in err


def test_preferences_without_manifest_exit_2_from_the_command_line(setup, tmp_path):
    unfinished = write_dataset(tmp_path / "unfinished", {f"grpo/{s}.parquet": pref_frame(s) for s in ROWS}, "u1")
    (unfinished / "manifest.json").unlink()
    proc = subprocess.run([sys.executable, "-m", "btc_platform.evaluation.llm_eval", "--model-url",
                           str(setup["model_dir"]), "--preferences-url", str(unfinished)],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2, proc.stderr
    assert "manifest.json" in proc.stderr and str(unfinished) in proc.stderr


def test_an_llm_champion_is_served_as_decoded_actions(setup, tmp_path):
    """The adapter promoted for action_24h answers over a real uvicorn server: /predict builds each row's
    prompt as the preference datasets do and decodes the greedy answer; /predict/latest reads the newest
    warehouse row. The answers equal an in-process generation of the same prompts."""
    import duckdb

    from btc_platform.datasets.preferences import prompt_text
    from btc_platform.llm.actions import try_decode
    from btc_platform.training.champions import write_champion
    from btc_platform.training.llm_common import generate, load_trained
    from btc_platform_tests.unit.test_serving import serve_target

    write_champion(str(tmp_path), "action_24h", {"model": sft_lora.MODEL, "model_url": str(setup["model_dir"]),
                                                 "dataset_version": "sft-v1", "promoted_at": "2024-06-01T00:00:00+00:00"})
    ts = pd.Timestamp("2024-03-01 12:00", tz="UTC")
    features = {"close": 61_000.0, "rsi_14": 71.0, "macd": 12.5, "macd_signal": 10.0}
    db = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE SCHEMA marts")
        con.execute("CREATE TABLE marts.training_table_1h (symbol VARCHAR, ts TIMESTAMPTZ, decision_at TIMESTAMPTZ, "
                    "close DOUBLE, rsi_14 DOUBLE, macd DOUBLE, macd_signal DOUBLE)")
        for h in (0, 1):
            con.execute("INSERT INTO marts.training_table_1h VALUES (?, ?, ?, ?, ?, ?, ?)",
                        ["BTC-USD", ts + pd.Timedelta(hours=h), ts + pd.Timedelta(hours=h + 1), *features.values()])
    with serve_target(tmp_path, "action_24h", warehouse_path=str(db)) as client:
        health = client.get("/health").json()
        body = {"rows": [{"symbol": "BTC-USD", "ts": ts.isoformat(), "features": features}]}
        predicted = client.post("/predict", json=body)
        latest = client.get("/predict/latest", params={"symbol": "BTC-USD"})
    assert health["status"] == "ok" and health["kind"] == "llm" and health["model"] == sft_lora.MODEL
    assert predicted.status_code == 200, predicted.text
    (answer,) = predicted.json()["predictions"]
    model, tokenizer = load_trained(setup["model_dir"])
    prompts = [prompt_text({**features, "symbol": "BTC-USD", "decision_at": ts + pd.Timedelta(hours=h)})
               for h in (1, 2)]
    expected = generate(model, tokenizer, prompts, max_new_tokens=48)
    assert answer["answer"] == expected[0]
    action, reason = try_decode(expected[0])
    assert answer["action"] == (action.name if action else None) and answer["valid"] == (action is not None)
    assert answer["reason"] == reason and answer["action"] == "hold"  # the adapter only ever learned HOLD
    assert latest.status_code == 200, latest.text
    newest = latest.json()
    assert newest["answer"] == expected[1] and newest["ts"].startswith("2024-03-01T13:00")
    assert newest["age_seconds"] > 86400 and newest["model"] == sft_lora.MODEL
