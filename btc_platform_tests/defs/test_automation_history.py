"""Automation carries a day of any age through the graph, and is on out of the box.

Evaluated with Dagster's `evaluate_automation_conditions` on a real instance and the real definitions;
upstream materializations are reported as events (nothing is computed).
"""

from datetime import date, datetime, timedelta, timezone

import dagster as dg

from btc_platform.defs.automation import LONG_LOOKBACK_DAYS
from btc_platform.defs.features.assets import LOOKAHEAD_DAYS
from btc_platform.defs.partitions import last_closed_day, multi_key

NOW = datetime.now(timezone.utc)
OLD = last_closed_day(NOW) - timedelta(days=LONG_LOOKBACK_DAYS + 200)  # far outside any window
SYMBOL = "BTC-USD"


def report(instance, asset: str, day: date, symbol: str = SYMBOL) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=asset, partition=str(multi_key(day, symbol))))


def report_ingest(instance, day: date, symbol: str = SYMBOL) -> None:
    """Candles ingested for the day and their quality asset materialized, its blocking checks passed."""
    from btc_platform.defs.monitoring.assets import ASSET, BLOCKING_CHECKS

    report(instance, "coinbase_candles_1m", day, symbol)
    report(instance, ASSET, day, symbol)
    for check in BLOCKING_CHECKS:
        instance.report_runless_asset_event(dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey(ASSET), check_name=check, passed=True, blocking=True))


def requested(result, asset: str) -> set[str]:
    return {str(k) for k in result.get_requested_partitions(dg.AssetKey(asset))}


def evaluate(instance, assets: list[str], cursor=None):
    from btc_platform.definitions import defs

    return dg.evaluate_automation_conditions(defs, instance, asset_selection=dg.AssetSelection.assets(*assets),
                                             evaluation_time=NOW, cursor=cursor)


def test_an_old_day_of_candles_carries_through_processed_and_warehouse(instance):
    downstream = ["candles_1h", "candles_1d", "warehouse_coinbase_candles_1m"]
    # History ingested before automation first looked: a missing old day is not filled in by itself
    # (a fresh instance does not backfill history); only an update carries a day through.
    report_ingest(instance, OLD - timedelta(days=30))
    result = evaluate(instance, downstream)
    assert all(requested(result, a) == set() for a in downstream)

    report_ingest(instance, OLD)
    result = evaluate(instance, downstream, result.cursor)
    day = str(multi_key(OLD, SYMBOL))
    assert {a: requested(result, a) for a in downstream} == {a: {day} for a in downstream}

    # Handled: asked once, not again at the next tick.
    result = evaluate(instance, downstream, result.cursor)
    assert requested(result, "candles_1h") == set()


def test_old_targets_follow_their_future_candles_and_the_old_mart_day_follows_its_loads(instance):
    from btc_platform.definitions import defs
    from btc_platform.defs.warehouse.dbt import OPTIONAL_SOURCES

    marts = defs.resolve_assets_def("training_table_1h").keys  # staging and marts: one dbt build
    selection = ["forward_targets_1h", *(k.to_user_string() for k in marts)]
    result = evaluate(instance, selection)
    for offset in range(LOOKAHEAD_DAYS + 1):  # OLD .. OLD+5: the whole look-ahead of OLD
        report(instance, "candles_1h", OLD + timedelta(days=offset))
    result = evaluate(instance, selection, result.cursor)
    assert requested(result, "forward_targets_1h") == {str(multi_key(OLD, SYMBOL))}

    graph = defs.resolve_asset_graph()
    loads = {dep for key in marts for dep in graph.get(key).parent_keys if dep not in marts}
    for key in loads - {dg.AssetKey(OPTIONAL_SOURCES[0])}:
        for symbol in ("BTC-USD", "ETH-USD", "SOL-USD"):
            report(instance, key.to_user_string(), OLD, symbol)
    result = evaluate(instance, selection, result.cursor)
    assert requested(result, "training_table_1h") == {OLD.isoformat()}


def test_automation_and_the_daily_schedule_are_on_out_of_the_box():
    from btc_platform.definitions import defs

    assert defs.resolve_schedule_def("coinbase_daily_ingest_schedule").default_status == dg.DefaultScheduleStatus.RUNNING
    sensors = [s for s in defs.sensors if isinstance(s, dg.AutomationConditionSensorDefinition)]
    assert sensors and all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in sensors)
    # Together they evaluate every asset that has a condition, each exactly once.
    graph = defs.resolve_asset_graph()
    automated = {k for k in graph.get_all_asset_keys() if graph.get(k).automation_condition is not None}
    covered = [k for s in sensors for k in s.asset_selection.resolve(graph) if k in automated]
    assert sorted(covered) == sorted(automated)
