"""The main job on embedded defaults: start the vendor sandbox, build the demo window of the whole
asset graph into a persistent Dagster instance, and print what was built and where.

    python -m btc_platform.demo [--start 2024-01-01] [--days 21] [--symbols BTC-USD,ETH-USD]

Runs are recorded in $DAGSTER_HOME (default ./data/dagster_home), so `make ui` shows them afterwards.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from btc_platform.config import prepare_instance_home
from btc_platform.defs.features.assets import LOOKAHEAD_DAYS, TIMEFRAMES
from btc_platform.defs.partitions import HISTORY_START, range_tags
from btc_platform.sandbox import SandboxServer
from btc_platform.sandbox.registry import vendor_env

DAILY_ASSETS = [
    "coinbase_candles_1m",
    "coinbase_candles_1m_quality",
    *(f"candles_{tf}" for tf in TIMEFRAMES),
    *(f"technical_features_{tf}" for tf in TIMEFRAMES),
    "multi_timeframe_features_1h",
    "warehouse_coinbase_candles_1m",
    "warehouse_candle_quality",
    "warehouse_candles_1h",
    "warehouse_technical_features_1h",
    "warehouse_multi_timeframe_features_1h",
    "warehouse_candles_1d",
    "warehouse_technical_features_1d",
]
TARGET_ASSETS = ["forward_targets_1h", "warehouse_forward_targets_1h"]
VENDOR_PRODUCT_ASSETS = ["coinapi_spot_ohlcv_1h", "coinapi_perp_ohlcv_1h", "coinapi_funding_rates"]
VENDOR_DAY_ASSETS = ["cryptoquant_onchain_metrics", "alphavantage_daily", "fear_greed_index"]
CONTEXT_ASSETS = ["context_features_1h", "warehouse_context_features_1h"]
# Days of vendor history the context features read before the window (FRED: a year for YoY).
VENDOR_LOOKBACK_DAYS = {"fred_vintages": 400, "others": 21}
DATASET_ASSETS = [
    "training_splits_1h",
    "llm_instructions_1h",
    "llm_preferences_1h",
]
# The guide's 90-day horizon has no rows in a 21-day window (its target needs 90 days of future):
# the demo builds the instruction data for 24h instead.
DATASET_RUN_CONFIG = {"ops": {"llm_instructions_1h": {"config": {"horizon": "24h"}}}}


@dataclass
class DemoResult:
    runs: int = 0
    seconds: float = 0.0
    training_run_id: str | None = None
    facts: dict = field(default_factory=dict)


# Runs log to the instance (and the UI); the terminal shows warnings and the demo's own summary.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def materialize_selection(defs, instance, resources, selection, partition_key=None, run_config=None,
                          tags=None, raise_on_error=True) -> dg.ExecuteInProcessResult:
    """One in-process run of `selection` out of the whole graph, recorded in `instance`."""
    if isinstance(run_config, dg.RunConfig):
        # Its empty sections (e.g. `loggers: {}`) would override the quiet console below.
        run_config = {k: v for k, v in run_config.to_config_dict().items() if v}
    return dg.materialize(
        assets=list(defs.assets),
        selection=selection,
        partition_key=partition_key,
        instance=instance,
        resources=resources,
        run_config={**QUIET, **(run_config or {})},
        tags=tags,
        raise_on_error=raise_on_error,
    )


def dbt_model_keys(defs, model: str) -> list[str]:
    """Every model of the dbt asset that builds `model` (they run together)."""
    return [key.to_user_string() for key in defs.resolve_assets_def(model).keys]


def run_demo(start: date, days: int, symbols: list[str], instance: dg.DagsterInstance, log=print) -> DemoResult:
    """Materialize `days` days from `start` for `symbols`, then the marts, datasets and training.

    Expects COINBASE_BASE_URL (and the lake / warehouse variables) to be set by the caller.
    """
    from btc_platform.definitions import defs
    from btc_platform.defs.resources import build_resources
    from btc_platform.defs.training.sensors import train_on_new_dataset

    resources = build_resources()
    outcome = DemoResult()
    began = time.monotonic()
    last_day = start + timedelta(days=days - 1)

    # Vendors without products first: the context features of each product read them.
    materialize_selection(defs, instance, resources, ["fred_vintages"], HISTORY_START.isoformat())
    materialize_selection(defs, instance, resources, ["fred_vintages"],
                          tags=range_tags(start - timedelta(days=VENDOR_LOOKBACK_DAYS["fred_vintages"]), last_day))
    materialize_selection(defs, instance, resources, VENDOR_DAY_ASSETS,
                          tags=range_tags(start - timedelta(days=VENDOR_LOOKBACK_DAYS["others"]), last_day))
    outcome.runs += 3
    log(f"  FRED vintages (with their history), CryptoQuant, Alpha Vantage, Fear & Greed ingested to {last_day}")
    for symbol in symbols:
        # One run per product over the window, as a backfill chunk runs; the days past the window
        # that the window's forward targets look ahead to are ingested too.
        materialize_selection(defs, instance, resources, DAILY_ASSETS,
                              tags=range_tags(start, last_day + timedelta(days=LOOKAHEAD_DAYS), symbol))
        materialize_selection(defs, instance, resources, TARGET_ASSETS, tags=range_tags(start, last_day, symbol))
        materialize_selection(defs, instance, resources, VENDOR_PRODUCT_ASSETS,
                              tags=range_tags(start - timedelta(days=8), last_day, symbol))
        materialize_selection(defs, instance, resources, CONTEXT_ASSETS, tags=range_tags(start, last_day, symbol))
        outcome.runs += 4
        log(f"  {symbol}: {start}..{last_day} ingested (Coinbase, CoinAPI), checked, processed, in context, loaded")
    materialize_selection(defs, instance, resources, ["vendor_status", "warehouse_vendor_status", "coverage_report"])
    # The dbt models build the window's days in one run, as a backfill of the day partitions does.
    materialize_selection(defs, instance, resources, dbt_model_keys(defs, "training_table_1h"),
                          tags=range_tags(start, last_day))
    materialize_selection(defs, instance, resources, dbt_model_keys(defs, "coverage_by_day"))
    materialize_selection(defs, instance, resources, DATASET_ASSETS, run_config=DATASET_RUN_CONFIG)
    outcome.runs += 4
    log("  dbt models built, training splits and instruction data written")

    # Training goes through the real sensor: it sees the new dataset version and its passing checks.
    with dg.build_sensor_context(instance=instance, definitions=defs) as context:
        request = train_on_new_dataset(context)
    if isinstance(request, dg.RunRequest):
        result = materialize_selection(
            defs, instance, resources, ["xgboost_baseline_1h"], run_config=request.run_config, tags=request.tags
        )
        outcome.training_run_id = result.run_id
        outcome.runs += 1
        log(f"  training launched by sensor train_on_new_dataset for dataset {request.tags['dataset_version']}")
    else:
        log(f"  training sensor skipped: {request}")
    outcome.seconds = time.monotonic() - began
    return outcome


def latest_metadata(instance: dg.DagsterInstance, key: str) -> dict:
    record = instance.get_latest_materialization_event(dg.AssetKey(key))
    if record is None:
        return {}
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def print_summary(instance: dg.DagsterInstance, outcome: DemoResult, log=print) -> None:
    from btc_platform.config import Settings
    from btc_platform.warehouse.duckdb_store import table_row_count

    settings = Settings.from_env()
    splits = latest_metadata(instance, "training_splits_1h")
    instructions = latest_metadata(instance, "llm_instructions_1h")
    preferences = latest_metadata(instance, "llm_preferences_1h")
    model = latest_metadata(instance, "xgboost_baseline_1h")
    duckdb_path = Path(settings.duckdb_path).resolve()
    log("")
    log(f"Built in {outcome.seconds:.0f} s ({outcome.runs} Dagster runs, recorded in {instance.root_directory})")
    log(f"  lake:       {Path(settings.lake_url).resolve() if '://' not in settings.lake_url else settings.lake_url}")
    log(f"  warehouse:  {duckdb_path}")
    for table in ("raw.coinbase_candles_1m", "processed.technical_features_1h", "marts.training_table_1h",
                  "marts.training_table_1d", "monitoring.coverage_by_day"):
        log(f"              {table}: {table_row_count(duckdb_path, table)} rows")
    log(f"  datasets:   {splits.get('path')} (version {splits.get('version')}; "
        f"train/validation/test rows {splits.get('rows_train')}/{splits.get('rows_validation')}/{splits.get('rows_test')})")
    log(f"              {instructions.get('path')} (horizon {instructions.get('horizon')}: Alpaca CSV + JSONL, context window, chat messages, TRL prompt/completion)")
    log(f"              {preferences.get('path')} (DPO prompt/chosen/rejected/reward, GRPO prompts with rewards; "
        f"{preferences.get('dagster/row_count')} rows)")
    log(f"  model:      {model.get('model_path')}")
    if model:
        log(f"              test RMSE {model.get('rmse', float('nan')):.6f} vs zero-return {model.get('zero_rmse', float('nan')):.6f}; "
            f"directional accuracy {model.get('directional_accuracy', float('nan')):.3f}")
    log("Open the UI on the same instance with: make ui")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", type=date.fromisoformat, default=date(2024, 1, 1))
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--symbols", default="BTC-USD,ETH-USD")
    parser.add_argument("--replay", action="append", default=[], metavar="SYMBOL=DIR",
                        help="replay real 1-minute candles for SYMBOL from DIR (Binance kline CSVs)")
    args = parser.parse_args(argv)

    os.environ.setdefault("DAGSTER_HOME", str(Path("data/dagster_home").resolve()))
    prepare_instance_home(Path(os.environ["DAGSTER_HOME"]))
    # The demo's terminal shows its own summary; Dagster's beta/preview notices go to the run logs.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    replay = dict(item.split("=", 1) for item in args.replay)
    with SandboxServer(replay=replay) as sandbox:
        # Every vendor through the sandbox, with the keys it accepts. Its Alpha Vantage twin gets no
        # per-minute limit so the demo doesn't wait out the free plan's 5 calls a minute.
        os.environ.update(vendor_env(sandbox))
        sandbox.vendors["alphavantage"].configure(per_minute=None)
        os.environ["ALPHAVANTAGE_REQUESTS_PER_MINUTE"] = "600"
        print(f"Vendor sandbox at {sandbox.url}; building {args.days} days from {args.start} for {args.symbols}")
        with dg.DagsterInstance.get() as instance:
            outcome = run_demo(args.start, args.days, args.symbols.split(","), instance)
            print_summary(instance, outcome)


if __name__ == "__main__":
    main()
