"""Training datasets built from the dbt training tables, one set of assets per table timeframe:

- `training_splits_<tf>`: walk-forward splits (Parquet, npz, scaler, LSTM sequences) for classic models;
- `llm_instructions_<tf>`: Alpaca / context-window / chat messages / TRL prompt-completion rows;
- `llm_preferences_<tf>`: DPO rows and prompt-only GRPO/DAPO rows with reward columns.

Each build is a version named by the content hash of its source table and its config; the same data
rebuilt lands on the same version (nothing rewritten), which is how the training sensor knows not
to train twice. Files go through the dataset store (local folder or gs://), manifest last.
"""


import json
from collections.abc import Iterator

import dagster as dg
import pandas as pd

from btc_platform.datasets.build import Build, publish
from btc_platform.datasets.checks import MAX_PARTIAL_BAR_SHARE, single_origin
from btc_platform.datasets.hashing import content_hash
from btc_platform.datasets.instructions import InstructionSpec
from btc_platform.datasets.llm_dataset import LLMSplitSpec, build_instruction_dataset, build_preference_dataset
from btc_platform.datasets.preferences import PreferenceSpec
from btc_platform.datasets.split_dataset import SplitSpec, build_split_dataset
from btc_platform.datasets.storage import DatasetStore
from btc_platform.defs.automation import DATASET_AUTOMATION
from btc_platform.defs.resources import ArtifactsResource, LakeResource, WarehouseResource
from btc_platform.sources import dataset_origins

MIN_ROWS_PER_SPLIT = 24
PARTIAL_BARS_CHECK = ("rows built on partial bars (under 90% of their minutes, volume features null) are at most "
                      "max_partial_bar_share of the rows (default 5%); the days holding them are listed")
ORIGIN_CHECK = ("the raw partitions under the rows come from one vendor source (sandbox, replay or live), as "
                "recorded with each partition; mixed origins are refused, named with example partitions")
TIMEFRAMES = {"1h": "marts.training_table_1h", "1d": "marts.training_table_1d"}
# The daily table predicts the next day by default; windows of 14 days for its sequences.
SPLIT_DEFAULTS = {"1h": {}, "1d": {"target": "target_return_24h", "sequence_length": 14}}
SPLIT_CHECKS = {
    "required_completeness": "more than 95% of rows carry every required core field (close, rsi_14, macd, sma_20, volatility_30)",
    "targets_present": "every row of every split has its target",
    "no_long_gaps": "no symbol has a hole longer than 7 days",
    "splits_purged": "no training label window reaches into a validation/test window; embargo after each test window",
    "splits_large_enough": f"every split holds at least {MIN_ROWS_PER_SPLIT} rows",
    "partial_bars": PARTIAL_BARS_CHECK,
    "single_origin": ORIGIN_CHECK,
}
LLM_CHECKS = {
    "numbers_from_decision_time": "samples rebuilt from the table cut off at their decision time come out identical",
    "hf_loadable": "the files load with Hugging Face datasets with the expected rows and columns",
    "trl_format": "rows match TRL's dataset formats (keys and types)",
    "splits_purged": "no training label window reaches into a validation/test window",
    "partial_bars": PARTIAL_BARS_CHECK,
    "single_origin": ORIGIN_CHECK,
}


class SplitsConfig(dg.Config):
    target: str = "target_return_1h"
    label: str = "target_label_24h"
    purge: str = "24h"  # >= the target's horizon
    embargo: str = "24h"
    n_folds: int = 3  # walk-forward: every fold's test window is judged by a model fitted on that fold alone
    validation_fraction: float = 0.15
    test_fraction: float = 0.15
    train_on: str = "past"  # "all": also train after each test window's embargo
    scaler: str = "standard"  # or "robust"
    sequence_length: int = 24
    max_partial_bar_share: float = MAX_PARTIAL_BAR_SHARE  # of rows on bars missing part of their minutes


class InstructionsConfig(dg.Config):
    # 24h by default, so automation (which passes no run config) builds a dataset from a few weeks of
    # data, and the action_24h champion is judged on it. The guide's 90d has rows once the table holds
    # 90 days past a decision: until then a run for it materializes nothing and says why.
    horizon: str = "24h"
    context_length: int = 7
    context_step: str = "1D"
    embargo: str = "24h"
    max_partial_bar_share: float = MAX_PARTIAL_BAR_SHARE


class PreferencesConfig(dg.Config):
    # Charged on every fill (entry and exit), as the evaluation's backtest charges them.
    taker_fee_bps: float = 10.0
    maker_fee_bps: float = 2.0
    slippage_bps: float = 2.0
    limit_offsets_bps: list[float] = [25.0, 50.0, 100.0]
    pairing: str = "best_vs_worst"  # or "best_vs_each"
    purge: str = "24h"  # reward columns beyond it (3d, 5d returns) are left out
    embargo: str = "24h"
    max_partial_bar_share: float = MAX_PARTIAL_BAR_SHARE


def store(artifacts: ArtifactsResource) -> DatasetStore:
    return DatasetStore(artifacts.datasets_dir)


def _read(warehouse: WarehouseResource, table: str) -> tuple[pd.DataFrame, str]:
    frame = warehouse.read(table)
    if frame.empty:
        raise dg.Failure(f"{table} is empty: build the warehouse marts first")
    return frame, content_hash(frame)


def _check_origin(build: Build, lake: LakeResource, frame: pd.DataFrame) -> Build:
    build.checks["single_origin"] = single_origin(*dataset_origins(lake.lake(), frame))
    return build


def _json(value) -> dg.MetadataValue:
    return dg.MetadataValue.json(json.loads(json.dumps(value, default=str)))


def _result(context: dg.AssetExecutionContext, asset: str, datasets: DatasetStore, build: Build,
            blocking: dict[str, str], extra: dict | None = None) -> dg.MaterializeResult:
    manifest, reused = publish(datasets, build)
    url = datasets.version_url(build.dataset, build.version)
    context.log.info(f"{build.dataset} version {build.version} {'unchanged' if reused else 'written'} at {url}")
    checks = [dg.AssetCheckResult(asset_key=asset, check_name=name, passed=bool(build.checks[name]["passed"]),
                                  metadata={"details": _json(build.checks[name])})
              for name in blocking]
    if "label_balance" in build.checks:
        checks.append(dg.AssetCheckResult(asset_key=asset, check_name="label_balance",
                                          passed=bool(build.checks["label_balance"]["passed"]),
                                          severity=dg.AssetCheckSeverity.WARN,
                                          metadata={"details": _json(build.checks["label_balance"])}))
    rows = {name: part["rows"] for name, part in build.splits.items()}
    return dg.MaterializeResult(
        metadata={"version": build.version, "path": dg.MetadataValue.path(url), "reused": reused,
                  "source_rows": build.source["rows"], "source_range": f"{build.source['ts_min']} .. {build.source['ts_max']}",
                  **{f"rows_{k}": v for k, v in rows.items()}, "dagster/row_count": sum(rows.values()),
                  "notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in build.notes) or "-"),
                  "code_version": manifest["code_version"], **(extra or {})},
        data_version=dg.DataVersion(build.version),
        check_results=checks,
    )


def _specs(asset: str, checks: dict[str, str], label_balance: bool = False) -> list[dg.AssetCheckSpec]:
    specs = [dg.AssetCheckSpec(name, asset=asset, blocking=True, description=text) for name, text in checks.items()]
    if label_balance:
        specs.append(dg.AssetCheckSpec("label_balance", asset=asset, description="class shares reported; warns under 5%"))
    return specs


def dataset_assets(timeframe: str, table: str) -> list[dg.AssetsDefinition]:
    splits_name, instructions_name, preferences_name = (
        f"training_splits_{timeframe}", f"llm_instructions_{timeframe}", f"llm_preferences_{timeframe}")
    upstream = [table.split(".")[-1]]
    config_class = type(f"SplitsConfig{timeframe}", (SplitsConfig,),
                        {"__annotations__": {k: type(v) for k, v in SPLIT_DEFAULTS[timeframe].items()},
                         **SPLIT_DEFAULTS[timeframe]})

    @dg.asset(name=splits_name, group_name="datasets", deps=upstream, kinds={"pandas", "parquet", "numpy"},
              description=f"Walk-forward train/validation/test splits of `{table}` with purge and embargo; Parquet, "
              "`splits.npz` (X/y, feature names, timestamps, symbols), `scaler.json` (train only), `sequences.npz` "
              "(LSTM windows), manifest and dataset card.",
              check_specs=_specs(splits_name, SPLIT_CHECKS, label_balance=True),
              automation_condition=DATASET_AUTOMATION)
    def splits(context: dg.AssetExecutionContext, config: config_class, warehouse: WarehouseResource,
               artifacts: ArtifactsResource, lake: LakeResource) -> dg.MaterializeResult:
        frame, source_hash = _read(warehouse, table)
        spec = SplitSpec(**config.model_dump())
        try:
            build = build_split_dataset(frame, spec, dataset=splits_name, source_name=table,
                                        source_hash=source_hash, min_rows_per_split=MIN_ROWS_PER_SPLIT)
        except ValueError as exc:  # too little history for the windows, a purge shorter than the horizon
            raise dg.Failure(f"{splits_name} from {table} ({len(frame)} rows): {exc}") from exc
        return _result(context, splits_name, store(artifacts), _check_origin(build, lake, frame), SPLIT_CHECKS,
                       {"features": len(build.extra["features"]), "target": spec.target})

    # A multi-asset that can skip: a horizon without rows yet materializes nothing (no empty version, no
    # failed checks), and the asset's previous version stays current.
    @dg.multi_asset(name=instructions_name, can_subset=True, specs=[dg.AssetSpec(
        instructions_name, group_name="datasets", deps=upstream, kinds={"pandas", "json", "csv"}, skippable=True,
        description=f"Instruction data from `{table}` per the 90-day prediction guide: Alpaca "
        "instruction/input/output (CSV, JSONL), the context-window variant, chat messages and TRL "
        "prompt/completion rows, split walk-forward with a purge of the horizon.",
        automation_condition=DATASET_AUTOMATION)], check_specs=_specs(instructions_name, LLM_CHECKS))
    def instructions(context: dg.AssetExecutionContext, config: InstructionsConfig, warehouse: WarehouseResource,
                     artifacts: ArtifactsResource, lake: LakeResource) -> Iterator[dg.MaterializeResult]:
        frame, source_hash = _read(warehouse, table)
        spec = InstructionSpec(config.horizon, config.context_length, pd.Timedelta(config.context_step))
        build = build_instruction_dataset(frame, spec, LLMSplitSpec(embargo=config.embargo,
                                                                       max_partial_bar_share=config.max_partial_bar_share),
                                          dataset=f"{instructions_name}/horizon={config.horizon}",
                                          source_name=table, source_hash=source_hash)
        if build.extra["rows"] == 0:
            reason = build.notes[-1]
            context.log.warning(f"{instructions_name}: nothing built: {reason}")
            context.log_event(dg.AssetObservation(instructions_name, metadata={
                "skipped": reason, "horizon": config.horizon, "source_rows": len(frame)}))
            return
        result = _result(context, instructions_name, store(artifacts), _check_origin(build, lake, frame), LLM_CHECKS,
                       {"horizon": config.horizon, "rows": build.extra["rows"],
                        "example": _json(build.examples.get("alpaca", {}))})
        selected = {key.name for key in context.selected_asset_check_keys}
        yield dg.MaterializeResult(metadata=result.metadata, data_version=result.data_version,
                                   check_results=[c for c in result.check_results if c.check_name in selected])

    @dg.asset(name=preferences_name, group_name="datasets", deps=upstream, kinds={"pandas", "json", "parquet"},
              description=f"Trading preference data from `{table}`: DPO prompt/chosen/rejected/reward rows and "
              "prompt-only GRPO/DAPO rows with reward columns, candidates scored by realized 24h outcomes "
              "(market, hold, limit orders filled or not, net of fees).",
              check_specs=_specs(preferences_name, LLM_CHECKS),
              automation_condition=DATASET_AUTOMATION)
    def preferences(context: dg.AssetExecutionContext, config: PreferencesConfig, warehouse: WarehouseResource,
                    artifacts: ArtifactsResource, lake: LakeResource) -> dg.MaterializeResult:
        frame, source_hash = _read(warehouse, table)
        spec = PreferenceSpec(config.taker_fee_bps, config.maker_fee_bps, tuple(config.limit_offsets_bps), config.pairing,
                              slippage_bps=config.slippage_bps)
        split = LLMSplitSpec(embargo=config.embargo, max_partial_bar_share=config.max_partial_bar_share)
        build = build_preference_dataset(frame, spec, split, config.purge,
                                         dataset=preferences_name, source_name=table, source_hash=source_hash)
        return _result(context, preferences_name, store(artifacts), _check_origin(build, lake, frame), LLM_CHECKS,
                       {"ties_skipped": build.extra["ties_skipped"],
                        "example": _json(build.examples.get("dpo", {}))})

    return [splits, instructions, preferences]


DATASET_ASSETS = [a for tf, table in TIMEFRAMES.items() for a in dataset_assets(tf, table)]
