"""Training datasets built from the dbt training table: time-ordered splits and instruction data.

Each build is a version named by the content hash of the table it came from; a rebuild of the same
data lands in the same folder, which is how the training sensor knows not to train twice.
"""


import json
from pathlib import Path

import dagster as dg
import pandas as pd

from btc_platform.datasets.instructions import build_instruction_rows, write_instruction_files
from btc_platform.datasets.splits import (
    FEATURE_COLUMNS,
    content_hash,
    split_summary,
    time_split,
    write_split_files,
)
from btc_platform.defs.resources import ArtifactsResource, WarehouseResource
from btc_platform.defs.warehouse.dbt import TRAINING_TABLE

SPLITS = "training_splits_1h"
TARGET = "target_return_1h"
# The purge between splits covers the longest target horizon, so no label crosses a boundary.
PURGE_GAP = pd.Timedelta(hours=24)
MIN_ROWS_PER_SPLIT = 24


def version_dir(datasets_dir: str, name: str, version: str) -> Path:
    return Path(datasets_dir).resolve() / name / f"version={version}"


def load_split(datasets_dir: str, version: str, split: str) -> pd.DataFrame:
    return pd.read_parquet(version_dir(datasets_dir, SPLITS, version) / f"{split}.parquet")


def latest_version(context: dg.AssetExecutionContext) -> str:
    """The version recorded by the latest materialization of the splits (the files are named by it)."""
    record = context.instance.get_latest_materialization_event(dg.AssetKey(SPLITS))
    if record is None:
        raise dg.Failure(f"{SPLITS} has never been materialized: build it first")
    return record.asset_materialization.metadata["version"].value


@dg.asset(
    group_name="datasets",
    deps=["training_table_1h"],
    kinds={"pandas", "parquet", "numpy"},
    description=f"Train/validation/test split of the 1h training table by time, purged by {PURGE_GAP} "
    "before each boundary; Parquet per split and `splits.npz` (X/y, feature names, timestamps).",
    check_specs=[
        dg.AssetCheckSpec("splits_purged", asset=SPLITS, blocking=True,
                          description="each split ends at least the target horizon before the next begins"),
        dg.AssetCheckSpec("splits_large_enough", asset=SPLITS, blocking=True,
                          description=f"every split holds at least {MIN_ROWS_PER_SPLIT} rows"),
    ],
    automation_condition=dg.AutomationCondition.eager(),
)
def training_splits_1h(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                       artifacts: ArtifactsResource) -> dg.MaterializeResult:
    table = warehouse.read(TRAINING_TABLE)
    version = content_hash(table)[:16]
    out_dir = version_dir(artifacts.datasets_dir, SPLITS, version)
    splits = time_split(table, gap=PURGE_GAP)
    write_split_files(splits, out_dir, FEATURE_COLUMNS, TARGET)
    summary = split_summary(splits)
    (out_dir / "manifest.json").write_text(json.dumps(
        {"dataset": SPLITS, "version": version, "source_table": TRAINING_TABLE, "target": TARGET,
         "features": FEATURE_COLUMNS, "purge_gap": str(PURGE_GAP), "splits": summary},
        indent=2, default=str))
    context.log.info(f"{SPLITS} version {version}: {summary} at {out_dir}")

    order = [splits[s]["ts"] for s in ("train", "validation", "test")]
    purged = all(a.max() + PURGE_GAP <= b.min() for a, b in zip(order, order[1:]))
    sizes = {s: len(f) for s, f in splits.items()}
    return dg.MaterializeResult(
        metadata={
            "version": version,
            "path": dg.MetadataValue.path(str(out_dir)),
            **{f"rows_{s}": n for s, n in sizes.items()},
            "dagster/row_count": sum(sizes.values()),
        },
        data_version=dg.DataVersion(version),
        check_results=[
            dg.AssetCheckResult(check_name="splits_purged", passed=purged, metadata={"gap": str(PURGE_GAP)}),
            dg.AssetCheckResult(check_name="splits_large_enough",
                                passed=min(sizes.values()) >= MIN_ROWS_PER_SPLIT, metadata=sizes),
        ],
    )


@dg.asset(
    group_name="datasets",
    deps=[training_splits_1h],
    kinds={"pandas", "csv", "json"},
    description="Alpaca-style instruction data (instruction/input/output, CSV and JSONL) asking for the "
    "24h return from the features known at decision time, one file set per split.",
    automation_condition=dg.AutomationCondition.eager(),
)
def instructions_24h(context: dg.AssetExecutionContext, artifacts: ArtifactsResource) -> dg.MaterializeResult:
    version = latest_version(context)
    out_root = version_dir(artifacts.datasets_dir, "instructions_24h", version)
    counts = {}
    for split in ("train", "validation", "test"):
        rows = build_instruction_rows(load_split(artifacts.datasets_dir, version, split), horizon="24h")
        write_instruction_files(rows, out_root / split)
        counts[split] = len(rows)
    sample = rows.head(1).to_dict("records")[0] if len(rows) else {}
    return dg.MaterializeResult(metadata={
        "version": version,
        "path": dg.MetadataValue.path(str(out_root)),
        **{f"rows_{s}": n for s, n in counts.items()},
        "example": dg.MetadataValue.json(sample),
    })
