"""Training throughput of every trainer on the device it finds, and the GPU/CPU ratio where CUDA exists.

    .venv/bin/python benchmarks/training.py                    # auto: CUDA and CPU when a GPU is visible, else CPU
    .venv/bin/python benchmarks/training.py --devices cuda --require-cuda   # make gpu-check
    .venv/bin/python benchmarks/training.py --smoke            # fewest steps, for CI

Datasets are built by the platform's own builders (walk-forward splits with LSTM windows, instruction
data, DPO/GRPO preference data) from a synthetic training table, so prompts have the real length; the
base model is the tiny Qwen2 built offline (`--model-size small` builds a wider, deeper one, which
says more about a GPU). Each trainer runs as the same process Dagster launches
(`python -m btc_platform.training.<name>`), on CPU by hiding the GPU (`CUDA_VISIBLE_DEVICES=`), and
reports its own throughput over its training steps (imports and loading excluded):

| trainer | figure |
|---|---|
| lstm | samples/s |
| sft_lora | tokens/s |
| dpo_lora | pairs/s |
| grpo_dapo | completions/s |

The baseline is the same trainer on the CPU in the same run: GPU/CPU ratios are printed when both ran.
The last line is `BENCH_JSON {...}` with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable without installing it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
TRAINERS = {  # module: (figure, params for a benchmark run)
    "lstm": ("samples_per_s", {"max_epochs": 3, "patience": 100}),
    "sft_lora": ("tokens_per_s", {"max_steps": 10}),
    "dpo_lora": ("pairs_per_s", {"max_steps": 8}),
    "grpo_dapo": ("completions_per_s", {"max_steps": 4}),
}
SMOKE = {"lstm": {"max_epochs": 1}, "sft_lora": {"max_steps": 2}, "dpo_lora": {"max_steps": 2},
         "grpo_dapo": {"max_steps": 1, "num_generations": 4, "per_device_train_batch_size": 8}}
SIZES = {"tiny": {"hidden_size": 64, "layers": 2}, "small": {"hidden_size": 512, "layers": 8, "vocab_size": 2048}}


def build_datasets(root: Path, days: int) -> dict[str, str]:
    """Publish splits, instructions (24h) and preferences built from a synthetic table; their URLs."""
    import pandas as pd

    from btc_platform.datasets.build import publish
    from btc_platform.datasets.hashing import content_hash
    from btc_platform.datasets.instructions import InstructionSpec
    from btc_platform.datasets.llm_dataset import LLMSplitSpec, build_instruction_dataset, build_preference_dataset
    from btc_platform.datasets.preferences import PreferenceSpec
    from btc_platform.datasets.split_dataset import SplitSpec, build_split_dataset
    from btc_platform.datasets.storage import DatasetStore
    from btc_platform_tests.synthetic_tables import training_table

    table = training_table(days=days, seed=7)
    source = content_hash(table)
    store = DatasetStore(str(root))
    builds = {
        "splits": build_split_dataset(table, SplitSpec(), dataset="splits", source_name="synthetic", source_hash=source),
        "instructions": build_instruction_dataset(table, InstructionSpec("24h", 7, pd.Timedelta("1D")),
                                                  LLMSplitSpec(), dataset="instructions", source_name="synthetic",
                                                  source_hash=source),
        "preferences": build_preference_dataset(table, PreferenceSpec(), LLMSplitSpec(), "24h", dataset="preferences",
                                                source_name="synthetic", source_hash=source),
    }
    for build in builds.values():
        publish(store, build)
    return {name: store.version_url(b.dataset, b.version) for name, b in builds.items()}


def run_trainer(module: str, dataset: str, out: Path, params: dict, base_model: str, device: str) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # the same process on the CPU
    cmd = [sys.executable, "-m", f"btc_platform.training.{module}", "--dataset-dir", dataset,
           "--model-dir", str(out / f"{module}-{device}"), "--params", json.dumps(params), "--no-mlflow"]
    if module not in ("lstm",):
        cmd += ["--base-model", base_model]
    began = time.monotonic()
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{module} on {device} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["process_s"] = round(time.monotonic() - began, 2)
    return figures


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", choices=["auto", "cpu", "cuda", "both"], default="auto")
    parser.add_argument("--require-cuda", action="store_true", help="fail when no GPU is visible (make gpu-check)")
    parser.add_argument("--model-size", choices=list(SIZES), default="tiny")
    parser.add_argument("--days", type=int, default=40, help="days of the synthetic hourly table")
    parser.add_argument("--smoke", action="store_true", help="fewest steps (CI)")
    args = parser.parse_args(argv)

    import torch

    from btc_platform.llm.tiny_model import build_tiny_model, texts_from_dataset

    cuda = torch.cuda.is_available()
    if args.require_cuda and not cuda:
        raise SystemExit("no CUDA device visible: torch.cuda.is_available() is False")
    devices = {"auto": ["cuda", "cpu"] if cuda else ["cpu"], "cpu": ["cpu"], "cuda": ["cuda"],
               "both": ["cuda", "cpu"]}[args.devices]
    if "cuda" in devices and not cuda:
        raise SystemExit("--devices asks for cuda, but no GPU is visible")
    gpu = torch.cuda.get_device_name(0) if cuda else None
    print(f"devices: {devices}" + (f" ({gpu})" if gpu else " (no GPU visible)"))

    results: dict = {"devices": devices, "gpu": gpu, "model_size": args.model_size, "trainers": {}}
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        tmp = Path(tmp)
        began = time.monotonic()
        urls = build_datasets(tmp / "datasets", args.days)
        texts = [t for url in (urls["instructions"], urls["preferences"]) for t in texts_from_dataset(url)]
        base = str(build_tiny_model(texts, tmp / "base", **SIZES[args.model_size]))
        print(f"datasets and a {args.model_size} base model built in {time.monotonic() - began:.1f} s")
        dataset_of = {"lstm": urls["splits"], "sft_lora": urls["instructions"], "dpo_lora": urls["preferences"],
                      "grpo_dapo": urls["preferences"]}
        print(f"{'trainer':<10} {'device':<6} {'figure':<18} {'value':>12} {'train s':>8} {'process s':>9}")
        for module, (figure, params) in TRAINERS.items():
            params = {**params, **(SMOKE[module] if args.smoke else {})}
            row = {}
            for device in devices:
                got = run_trainer(module, dataset_of[module], tmp / "models", params, base, device)
                if got.get("device") != device:
                    raise SystemExit(f"{module} asked for {device} but ran on {got.get('device')}")
                row[device] = {"value": got[figure], "train_s": got.get("train_time_s"), "process_s": got["process_s"],
                               "precision": got.get("precision")}
                print(f"{module:<10} {device:<6} {figure:<18} {got[figure]:>12.1f} "
                      f"{got.get('train_time_s') or float('nan'):>8.2f} {got['process_s']:>9.1f}")
            if "cuda" in row and "cpu" in row and row["cpu"]["value"]:
                row["gpu_over_cpu"] = row["cuda"]["value"] / row["cpu"]["value"]
                print(f"{'':<10} GPU/CPU ratio (baseline: the same trainer on the CPU): {row['gpu_over_cpu']:.1f}x")
            results["trainers"][module] = {"figure": figure, **row}
    print("BENCH_JSON " + json.dumps(results, default=str))
    return results


if __name__ == "__main__":
    main()
