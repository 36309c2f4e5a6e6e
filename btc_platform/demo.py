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

from btc_platform.config import check_numeric_env, prepare_instance_home
from btc_platform.defs.evaluation.assets import LLM_MODELS, NUMERIC_MODELS
from btc_platform.defs.features.assets import LOOKAHEAD_DAYS, TIMEFRAMES
from btc_platform.defs.partitions import HISTORY_START, last_closed_day, range_tags
from btc_platform.vendors.coinbase import PRODUCT_START_DATES
from btc_platform.sandbox import SandboxServer
from btc_platform.sandbox.registry import vendor_env

INGEST_ASSETS = ["coinbase_candles_1m", "coinbase_candles_1m_quality"]
DAILY_ASSETS = [
    *INGEST_ASSETS,
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
    training_runs: dict[str, str] = field(default_factory=dict)
    facts: dict = field(default_factory=dict)
    # Days whose quality checks blocked them, by product, with the reasons; and what they stopped.
    blocked: dict[str, dict[date, list[str]]] = field(default_factory=dict)
    stopped: list[str] = field(default_factory=list)
    progress: "Progress | None" = None  # prints a line per run when set


def check_arguments(start: date, days: int, symbols: list[str], replay: list[str] = (),
                    now=None) -> dict[str, str]:
    """Refuse up front what would only fail after minutes of backfills (or build nothing), naming the
    argument; returns the replay folders by product."""
    if days < 1:
        raise ValueError(f"--days {days}: the window needs at least 1 day")
    unknown = [s for s in symbols if s not in PRODUCT_START_DATES]
    if unknown or not symbols:
        raise ValueError(f"--symbols {','.join(symbols)}: {', '.join(unknown) or 'nothing'} is not a product "
                         f"the platform ingests; choose from {','.join(PRODUCT_START_DATES)}")
    for symbol in symbols:
        if start < PRODUCT_START_DATES[symbol]:
            raise ValueError(f"--start {start}: {symbol} trades on Coinbase from {PRODUCT_START_DATES[symbol]}")
    # The demo also ingests the days its targets look ahead to: they must have ended too.
    last, closed = start + timedelta(days=days - 1), last_closed_day(now)
    through = last + timedelta(days=LOOKAHEAD_DAYS)
    if through > closed:
        latest = closed - timedelta(days=days - 1 + LOOKAHEAD_DAYS)
        raise ValueError(f"--start {start} --days {days}: the window ends on {last} and its targets look "
                         f"{LOOKAHEAD_DAYS} days ahead, to {through}, after the last closed UTC day {closed} "
                         f"(start on or before {latest})")
    folders = {}
    for item in replay:
        symbol, sep, folder = item.partition("=")
        if not sep or symbol not in symbols or not Path(folder).is_dir():
            raise ValueError(f"--replay {item}: expected SYMBOL=DIR with SYMBOL among --symbols and DIR a folder "
                             "of Binance 1-minute kline CSVs")
        folders[symbol] = folder
    return folders


def window_segments(first: date, last: date, excluded) -> list[tuple[date, date]]:
    """The runs of consecutive days in first..last that avoid `excluded`: one range run each."""
    segments, begin, day = [], None, first
    while day <= last:
        if day in excluded:
            if begin is not None:
                segments.append((begin, day - timedelta(days=1)))
            begin = None
        elif begin is None:
            begin = day
        day += timedelta(days=1)
    if begin is not None:
        segments.append((begin, last))
    return segments


def blocked_days(lake, symbol: str, first: date, last: date) -> dict[date, list[str]]:
    """Days of `symbol` in first..last whose quality summary records blocking failures, with them."""
    from btc_platform.defs.coinbase.assets import candles_ref
    from btc_platform.defs.monitoring.assets import SUMMARY_FILE

    out = {}
    for day in (first + timedelta(days=n) for n in range((last - first).days + 1)):
        summary = lake.read_json(candles_ref(day, symbol), SUMMARY_FILE) or {}
        if summary.get("blocking_failures"):
            out[day] = list(summary["blocking_failures"])
    return out


def blocked_lines(outcome: DemoResult) -> list[str]:
    """The summary's lines for the days quality checks blocked, and for the runs that stopped beside them."""
    lines = [f"  blocked:    {symbol} {day}: {'; '.join(reasons)} (the day, and what needs it, not built)"
             for symbol, days in outcome.blocked.items() for day, reasons in sorted(days.items())]
    return lines + [f"  stopped:    {line}" for line in outcome.stopped]


def step_failures(result: dg.ExecuteInProcessResult) -> list[tuple[str, str, str]]:
    """(step, error class, first line of its message) of each failed step of a run."""
    out = []
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            while error.cause is not None and error.cls_name == "DagsterExecutionStepExecutionError":
                error = error.cause  # the user code's own error
            out.append((event.step_key, error.cls_name, error.message.strip().splitlines()[0]))
    return out


# Runs log to the instance (and the UI); the terminal shows the demo's progress lines (a failed step by
# name and first line) and its summary, not Dagster's event lines and tracebacks.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def materialize_selection(defs, instance, resources, selection, partition_key=None, run_config=None,
                          tags=None, raise_on_error=True, progress=None) -> dg.ExecuteInProcessResult:
    """One in-process run of `selection` out of the whole graph, recorded in `instance`; `progress`,
    when given, hears of it (`Progress.run`)."""
    if isinstance(run_config, dg.RunConfig):
        # Its empty sections (e.g. `loggers: {}`) would override the quiet console below.
        run_config = {k: v for k, v in run_config.to_config_dict().items() if v}
    began = time.monotonic()
    result = dg.materialize(
        assets=list(defs.assets),
        selection=selection,
        partition_key=partition_key,
        instance=instance,
        resources=resources,
        run_config={**QUIET, **(run_config or {})},
        tags=tags,
        raise_on_error=raise_on_error,
    )
    if progress is not None:
        progress.run(selection, partition_key, tags, result, time.monotonic() - began)
    return result


class Progress:
    """One line per run, as the demo goes: its stage, the days it covered (and of how many the window
    has), the rows it wrote, its time and the time so far; the runs' own Dagster logs stay in the
    instance (the console logger is at WARNING)."""

    def __init__(self, log=print, total_days: int | None = None):
        self.log, self.total_days, self.began, self.runs, self.rows = log, total_days, time.monotonic(), 0, 0

    def days(self, partition_key, tags) -> str:
        tags = tags or {}
        first, last = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
        if not first:
            return str(partition_key or "")
        first, last = first.split("|")[0], last.split("|")[0]
        span = (date.fromisoformat(last) - date.fromisoformat(first)).days + 1
        symbol = tags["dagster/asset_partition_range_start"].partition("|")[2]
        of = f"/{self.total_days}" if self.total_days and span <= self.total_days else ""
        return f"{symbol + ' ' if symbol else ''}{first}..{last} ({span}{of} days)"

    @staticmethod
    def written_rows(result) -> int:
        rows = 0
        for event in result.get_asset_materialization_events():
            md = event.materialization.metadata
            value = md.get("dagster/row_count") or md.get("rows")
            rows += int(value.value) if value is not None and isinstance(value.value, (int, float)) else 0
        return rows

    def run(self, selection, partition_key, tags, result, seconds: float) -> None:
        self.runs += 1
        rows = self.written_rows(result)
        self.rows += rows
        names = list(selection)
        stage = names[0] if len(names) == 1 else f"{names[0]} +{len(names) - 1}"
        failed = step_failures(result)
        status = "ok" if result.success else f"FAILED (run {result.run_id[:8]} in the UI)"
        self.log(f"  [{self.runs:>3}] {stage:<34} {self.days(partition_key, tags):<40} {rows:>10,} rows "
                 f"{seconds:6.1f} s  {status}  (elapsed {time.monotonic() - self.began:,.0f} s)")
        for step, cls, message in failed:
            self.log(f"        {step}: {cls}: {message[:160]}")


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
    outcome = DemoResult(progress=Progress(log, days))
    began = time.monotonic()
    last_day = start + timedelta(days=days - 1)

    # Vendors without products first: the context features of each product read them.
    materialize_selection(defs, instance, resources, progress=outcome.progress, selection=["fred_vintages"],
                          partition_key=HISTORY_START.isoformat())
    materialize_selection(defs, instance, resources, progress=outcome.progress, selection=["fred_vintages"],
                          tags=range_tags(start - timedelta(days=VENDOR_LOOKBACK_DAYS["fred_vintages"]), last_day))
    materialize_selection(defs, instance, resources, progress=outcome.progress, selection=VENDOR_DAY_ASSETS,
                          tags=range_tags(start - timedelta(days=VENDOR_LOOKBACK_DAYS["others"]), last_day))
    outcome.runs += 3
    log(f"  FRED vintages (with their history), CryptoQuant, Alpha Vantage, Fear & Greed ingested to {last_day}")
    for symbol in symbols:
        build_product(defs, instance, resources, symbol, start, last_day, outcome, log)
    materialize_selection(defs, instance, resources, progress=outcome.progress, selection=["vendor_status", "warehouse_vendor_status", "coverage_report"])
    # The dbt models build the window's days in one run, as a backfill of the day partitions does.
    materialize_selection(defs, instance, resources, progress=outcome.progress, selection=dbt_model_keys(defs, "training_table_1h"),
                          tags=range_tags(start, last_day))
    materialize_selection(defs, instance, resources, progress=outcome.progress, selection=dbt_model_keys(defs, "coverage_by_day"))
    materialize_selection(defs, instance, resources, progress=outcome.progress, selection=DATASET_ASSETS, run_config=DATASET_RUN_CONFIG)
    outcome.runs += 4
    log("  dbt models built, training splits and instruction data written")

    # The LLM trainers need a base model; offline the demo builds a tiny one from the datasets' text.
    base_model = ensure_base_model(instance, log)
    # Training goes through the real sensor: it sees the new dataset versions and their passing checks.
    with dg.build_sensor_context(instance=instance, definitions=defs) as context:
        result = train_on_new_dataset(context)
    requests = result.run_requests if isinstance(result, dg.SensorResult) else []
    if not requests:
        log(f"  training sensor skipped: {result.skip_message}")
    for request in requests:
        began_model = time.monotonic()
        trained = materialize_selection(defs, instance, resources, progress=outcome.progress, selection=[request.tags["model"]],
                                        run_config=request.run_config, tags=request.tags)
        outcome.training_runs[request.tags["model"]] = trained.run_id
        outcome.runs += 1
        log(f"  {request.tags['model']} trained in {time.monotonic() - began_model:.0f} s (sensor train_on_new_dataset, "
            f"dataset {request.tags['dataset_version']}{', base ' + base_model if 'lora' in request.tags['model'] or 'dapo' in request.tags['model'] else ''})")
    # Judge the numeric models out of sample, rank them with the baselines, promote on validation only.
    materialize_selection(defs, instance, resources, progress=outcome.progress, selection=[f"evaluation_{m}" for m in NUMERIC_MODELS])
    materialize_selection(defs, instance, resources, progress=outcome.progress, selection=[f"evaluation_{m}" for m in LLM_MODELS])
    materialize_selection(defs, instance, resources, progress=outcome.progress, selection=["model_leaderboard_1h"])
    for champion in ("model_champion_1h", "model_champion_action_24h"):  # a failed blocking check fails its run
        materialize_selection(defs, instance, resources, progress=outcome.progress, selection=[champion], raise_on_error=False)
    outcome.runs += 5
    log("  models evaluated on validation and test (LLM answers decoded into actions), leaderboard built, champion decided")
    outcome.seconds = time.monotonic() - began
    return outcome


def build_product(defs, instance, resources, symbol: str, start: date, last_day: date, outcome: DemoResult,
                  log=print) -> None:
    """One product's window: ingested and checked in one run (with the days its targets look ahead to),
    then processed and loaded in one run per stretch of days between blocked ones, as backfill chunks run.

    A blocked day stops only what depends on it: its own partitions, and the targets that wait for it
    (day D's targets wait for D+LOOKAHEAD_DAYS). Runs that still fail beside a blocked day are listed
    in `outcome.stopped`; a failure with no blocked day behind it fails the demo."""
    from btc_platform.config import Settings
    from btc_platform.lake import Lake

    ingest_last = last_day + timedelta(days=LOOKAHEAD_DAYS)
    ingest = materialize_selection(defs, instance, resources, progress=outcome.progress, selection=INGEST_ASSETS,
                                   tags=range_tags(start, ingest_last, symbol), raise_on_error=False)
    blocked = blocked_days(Lake(Settings.from_env().lake_url), symbol, start, ingest_last)
    explained = {("coinbase_candles_1m_quality", "DagsterAssetCheckFailedError")} if blocked else set()
    unexplained = [f for f in step_failures(ingest) if f[:2] not in explained]
    if unexplained or (not ingest.success and not blocked):
        raise RuntimeError(f"{symbol} {start}..{ingest_last}: ingest failed: "
                           + "; ".join(f"{step}: {message}" for step, _, message in unexplained))
    if blocked:
        outcome.blocked[symbol] = blocked
        for day, reasons in blocked.items():
            log(f"  {symbol} {day} blocked by its quality checks ({'; '.join(reasons)}): what needs it is skipped")
    targets_wait_for = {day - timedelta(days=LOOKAHEAD_DAYS) for day in blocked}
    # The quality facts load for every day, blocked ones included: the coverage view shows why a day is out.
    stages = [
        ([a for a in DAILY_ASSETS[len(INGEST_ASSETS):] if a != "warehouse_candle_quality"], start, ingest_last,
         set(blocked)),
        (["warehouse_candle_quality"], start, ingest_last, set()),
        (TARGET_ASSETS, start, last_day, set(blocked) | targets_wait_for),
        (VENDOR_PRODUCT_ASSETS, start - timedelta(days=8), last_day, set()),
        (CONTEXT_ASSETS, start, last_day, set(blocked)),
    ]
    outcome.runs += 1
    for selection, first, last, excluded in stages:
        for a, b in window_segments(first, last, excluded):
            # Days before the window are context only (e.g. a replay's data may start at the window):
            # what fails there is listed, not fatal.
            result = materialize_selection(defs, instance, resources, progress=outcome.progress, selection=selection,
                                           tags=range_tags(a, b, symbol), raise_on_error=not blocked and a >= start)
            outcome.runs += 1
            outcome.stopped += [f"{symbol} {a}..{b} {step} (run {result.run_id[:8]}): {message}"
                                for step, _, message in step_failures(result)]
    log(f"  {symbol}: {start}..{last_day} ingested (Coinbase, CoinAPI), checked, processed, in context, loaded"
        + (f" (but {len(blocked)} blocked days)" if blocked else ""))


def ensure_base_model(instance: dg.DagsterInstance, log=print) -> str:
    """BTC_PLATFORM_BASE_MODEL when set; else a tiny Qwen2 built here from the LLM datasets' text
    (tokenizer and random weights, nothing downloaded), which the trainers load like any base model."""
    from btc_platform.config import Settings
    from btc_platform.llm.tiny_model import build_tiny_model, texts_from_dataset

    if os.environ.get("BTC_PLATFORM_BASE_MODEL"):
        return os.environ["BTC_PLATFORM_BASE_MODEL"]
    texts = []
    for asset in ("llm_instructions_1h", "llm_preferences_1h"):
        path = latest_metadata(instance, asset).get("path")
        if path and "://" not in path:
            texts += texts_from_dataset(path)
    folder = Path(Settings.from_env().models_dir).resolve() / "base" / "tiny-qwen2"
    build_tiny_model(texts, folder)
    os.environ["BTC_PLATFORM_BASE_MODEL"] = str(folder)
    log(f"  tiny base model built offline from {len(texts)} texts of the LLM datasets: {folder}")
    return str(folder)


def latest_metadata(instance: dg.DagsterInstance, key: str) -> dict:
    record = instance.get_latest_materialization_event(dg.AssetKey(key))
    if record is None:
        return {}
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def headline(model: str, m: dict) -> str:
    """The figures that say whether a model learned anything, per family."""
    nan = float("nan")
    if model in ("xgboost_baseline_1h", "lstm_1h"):
        text = (f"test RMSE {m.get('rmse', nan):.6f} vs zero-return {m.get('zero_rmse', nan):.6f}; "
                f"directional accuracy {m.get('directional_accuracy', nan):.3f}")
        if "label_accuracy" in m:
            text += f"; 24h label accuracy {m['label_accuracy']:.3f} vs majority {m.get('majority_accuracy', nan):.3f}"
        return text
    keys = [k for k in ("train_loss_first", "train_loss_last", "eval_loss", "reward_margin_first",
                        "reward_margin_last", "mean_reward_early", "mean_reward_late", "invalid_rate_late",
                        "prompts_dropped_dynamic_sampling", "tokens_per_s", "pairs_per_s", "completions_per_s")
            if m.get(k) is not None]
    return "; ".join(f"{k} {m[k]:.4g}" if isinstance(m[k], float) else f"{k} {m[k]}" for k in keys)


def mark_champion(table: str, champion: dict) -> list[str]:
    """The leaderboard's lines with the champion's row starred (the table was drawn before the promotion
    that follows it)."""
    url = str(champion.get("champion_url") or "")
    model, config = champion.get("champion"), url.rsplit("config=", 1)[-1] if "config=" in url else None
    lines = table.splitlines()
    for i, line in enumerate(lines):
        cells = line.split("|")
        if model and config and len(cells) > 3 and cells[2].strip() == model and config in line:
            cells[1] = " *".ljust(len(cells[1]))
            lines[i] = "|".join(cells)
    return lines


def model_tracking_uri() -> str:
    from btc_platform.training.runtime import tracking_uri

    return tracking_uri()


def print_summary(instance: dg.DagsterInstance, outcome: DemoResult, log=print) -> None:
    from btc_platform.config import Settings
    from btc_platform.defs.training.assets import MODELS
    from btc_platform.warehouse.duckdb_store import table_row_count

    settings = Settings.from_env()
    splits = latest_metadata(instance, "training_splits_1h")
    instructions = latest_metadata(instance, "llm_instructions_1h")
    preferences = latest_metadata(instance, "llm_preferences_1h")
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
    log("  models:")
    for spec in MODELS:
        model = latest_metadata(instance, spec.name)
        if not model:
            log(f"    {spec.name}: not trained")
            continue
        log(f"    {spec.name} ({model.get('device')}, {model.get('wall_time_s', 0):.0f} s, MLflow version "
            f"{model.get('registered_version')}): {model.get('model_path')}")
        log(f"      {headline(spec.name, model)}")
    log(f"  MLflow:     {model_tracking_uri()}")
    board = latest_metadata(instance, "model_leaderboard_1h")
    champion = latest_metadata(instance, "model_champion_1h")
    if board:
        log("  leaderboard (target_return_1h; * = champion; backtests net of fees and slippage on every fill):")
        for line in mark_champion(str(board.get("leaderboard", "")), champion):
            log(f"    {line}")
        log(f"  champion:   {champion.get('champion', 'none')} ({champion.get('action')}: {champion.get('reason')})")
        llm = latest_metadata(instance, "model_champion_action_24h")
        log(f"  action_24h: {llm.get('champion', 'none')} ({llm.get('action')}: {llm.get('reason')})")
    for line in blocked_lines(outcome):
        log(line)
    log("Open the UI on the same instance (and the same vendor sandbox) with: make ui")
    log("  then browse http://127.0.0.1:3000 (asset graph, runs, checks; materialize and backfill there)")


def record_source(sandbox: SandboxServer, home: Path) -> None:
    """The instance and the lake record this sandbox as their source (`make ui` starts the same one);
    one that holds another source's data stops the demo, unless BTC_PLATFORM_ALLOW_MIXED_SOURCES=1."""
    from btc_platform.config import SOURCE_ENV, Settings
    from btc_platform.lake import Lake
    from btc_platform.sources import SourceMismatch, claim_instance, claim_lake, mixing_allowed

    source, mixed = os.environ[SOURCE_ENV], mixing_allowed()
    settings = {"seed": sandbox.seed, "replay": {s: str(m.directory.resolve()) for s, m in sandbox.replay.items()}}
    try:
        claim_instance(home, source, mixed, settings=settings)
        claim_lake(Lake(Settings.from_env().lake_url), source, mixed)
    except SourceMismatch as error:
        raise SystemExit(f"demo: {error}") from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", type=date.fromisoformat, default=date(2024, 1, 1))
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--symbols", default="BTC-USD,ETH-USD")
    parser.add_argument("--replay", action="append", default=[], metavar="SYMBOL=DIR",
                        help="replay real 1-minute candles for SYMBOL from DIR (Binance kline CSVs)")
    args = parser.parse_args(argv)
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    try:
        replay = check_arguments(args.start, args.days, symbols, args.replay)
        check_numeric_env()
    except ValueError as error:
        parser.error(str(error))

    os.environ.setdefault("DAGSTER_HOME", str(Path("data/dagster_home").resolve()))
    prepare_instance_home(Path(os.environ["DAGSTER_HOME"]))
    # The demo's terminal shows its own summary; Dagster's beta/preview notices go to the run logs.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    with SandboxServer(replay=replay) as sandbox:
        # Every vendor through the sandbox, with the keys it accepts. Its Alpha Vantage twin gets no
        # per-minute limit so the demo doesn't wait out the free plan's 5 calls a minute.
        os.environ.update(vendor_env(sandbox))
        record_source(sandbox, Path(os.environ["DAGSTER_HOME"]))
        sandbox.vendors["alphavantage"].configure(per_minute=None)
        os.environ["ALPHAVANTAGE_REQUESTS_PER_MINUTE"] = "600"
        print(f"Vendor sandbox at {sandbox.url}; building {args.days} days from {args.start} for {args.symbols}")
        with dg.DagsterInstance.get() as instance:
            outcome = run_demo(args.start, args.days, symbols, instance)
            print_summary(instance, outcome)


if __name__ == "__main__":
    main()
