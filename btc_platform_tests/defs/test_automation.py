"""Declarative automation, evaluated as the daemon's automation sensor would, on a real instance.

Upstream materializations are reported as events (nothing is computed): what is tested is which
partitions the conditions request, and when.
"""

from datetime import date, datetime, timedelta, timezone

import dagster as dg

from btc_platform.defs.features.assets import LOOKAHEAD_DAYS, candles_asset, forward_targets_1h
from btc_platform.defs.partitions import multi_key
from btc_platform.defs.warehouse.loads import warehouse_loads

DAY = date(2024, 3, 1)
SYMBOL = "BTC-USD"
TARGETS = "forward_targets_1h"


def report(instance, asset: str, day: date, symbol: str = SYMBOL) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=asset, partition=str(multi_key(day, symbol))))


def requested(result, asset: str) -> set[str]:
    return {str(k) for k in result.get_requested_partitions(dg.AssetKey(asset))}


def test_a_target_day_is_filled_in_once_its_future_candles_land(instance):
    targets_load = next(a for a in warehouse_loads if a.key == dg.AssetKey("warehouse_forward_targets_1h"))
    # Resources are never used (nothing runs) but every definition must resolve.
    assets = dg.Definitions(assets=[candles_asset("1h"), forward_targets_1h, targets_load],
                            resources={"lake": dg.ResourceDefinition.none_resource(),
                                       "warehouse": dg.ResourceDefinition.none_resource()})
    selection = dg.AssetSelection.assets(TARGETS, "warehouse_forward_targets_1h")
    # The daemon evaluates a few days later, when day DAY is no longer the newest partition.
    now = datetime(DAY.year, DAY.month, DAY.day, tzinfo=timezone.utc) + timedelta(days=LOOKAHEAD_DAYS + 1, hours=1)
    result = dg.evaluate_automation_conditions(assets, instance, asset_selection=selection, evaluation_time=now)

    for offset in range(LOOKAHEAD_DAYS):  # DAY .. DAY+4: not enough future for the 5-day target
        report(instance, "candles_1h", DAY + timedelta(days=offset))
    result = dg.evaluate_automation_conditions(assets, instance, asset_selection=selection,
                                               evaluation_time=now, cursor=result.cursor)
    assert str(multi_key(DAY, SYMBOL)) not in requested(result, TARGETS)

    report(instance, "candles_1h", DAY + timedelta(days=LOOKAHEAD_DAYS))
    result = dg.evaluate_automation_conditions(assets, instance, asset_selection=selection,
                                               evaluation_time=now, cursor=result.cursor)
    assert requested(result, TARGETS) == {str(multi_key(DAY, SYMBOL))}
    # The load follows in the same evaluation: it will be requested alongside its upstream.
    assert requested(result, "warehouse_forward_targets_1h") == {str(multi_key(DAY, SYMBOL))}

    # Handled: the next evaluation asks for nothing more until something new lands.
    result = dg.evaluate_automation_conditions(assets, instance, asset_selection=selection,
                                               evaluation_time=now, cursor=result.cursor)
    assert requested(result, TARGETS) == set()


def dbt_day_requests(loads: list[dg.AssetKey], day: date) -> tuple[set[str], set[str]]:
    """Report `loads` for `day` (every symbol) on a fresh instance; the marts' and views' requests."""
    from btc_platform.definitions import defs
    from btc_platform.defs.partitions import daily_by_symbol

    symbols = daily_by_symbol.get_partitions_def_for_dimension("symbol").get_partition_keys()
    marts, views = defs.resolve_assets_def("training_table_1h"), defs.resolve_assets_def("coverage_by_day")
    selection = dg.AssetSelection.assets(*marts.keys, *views.keys)
    now = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(days=6, hours=1)
    with dg.instance_for_test() as instance:
        result = dg.evaluate_automation_conditions(defs, instance, asset_selection=selection, evaluation_time=now)
        for key in loads:
            for symbol in symbols:
                report(instance, key.to_user_string(), day, symbol)
        result = dg.evaluate_automation_conditions(defs, instance, asset_selection=selection,
                                                   evaluation_time=now, cursor=result.cursor)
    return requested(result, "training_table_1h"), requested(result, "coverage_by_day")


def test_a_dbt_day_builds_once_its_loads_land_without_waiting_for_90_day_targets():
    from btc_platform.definitions import defs
    from btc_platform.defs.warehouse.dbt import OPTIONAL_SOURCES

    graph = defs.resolve_asset_graph()
    marts = defs.resolve_assets_def("training_table_1h").keys
    loads = sorted({dep for key in marts for dep in graph.get(key).parent_keys if dep not in marts}
                   - {dg.AssetKey(OPTIONAL_SOURCES[0])})
    assert len(loads) == 7  # candles, technical (1h and 1d), multi-timeframe, context, targets

    mart_days, _ = dbt_day_requests(loads[:-1], DAY)
    assert mart_days == set()  # one load still missing: the day waits
    mart_days, view_days = dbt_day_requests(loads, DAY)
    # Day DAY builds, although its 90-day targets are absent; no other day has data.
    assert mart_days == {DAY.isoformat()}
    assert view_days == set()  # views are not partitioned, and nothing new reached their tables


def test_datasets_rebuild_when_any_day_of_the_mart_is_rebuilt(instance):
    from btc_platform.definitions import defs

    selection = dg.AssetSelection.assets("training_splits_1h")
    now = datetime(2024, 3, 10, tzinfo=timezone.utc)
    result = dg.evaluate_automation_conditions(defs, instance, asset_selection=selection, evaluation_time=now)
    # Initial evaluation: the whole history of the mart is missing, which must not block
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="training_table_1h", partition="2024-03-01"))
    result = dg.evaluate_automation_conditions(defs, instance, asset_selection=selection,
                                               evaluation_time=now, cursor=result.cursor)
    assert result.get_num_requested(dg.AssetKey("training_splits_1h")) == 1
    result = dg.evaluate_automation_conditions(defs, instance, asset_selection=selection,
                                               evaluation_time=now, cursor=result.cursor)
    assert result.get_num_requested(dg.AssetKey("training_splits_1h")) == 0  # handled until the next day lands


def test_a_single_day_run_of_the_marts_builds_only_that_day():
    from types import SimpleNamespace

    from btc_platform.defs.warehouse.dbt import partition_vars

    def window(first: str, last_exclusive: str, *, single: bool):
        return SimpleNamespace(has_partition_key=single, has_partition_key_range=not single,
                               partition_time_window=dg.TimeWindow(datetime.fromisoformat(first),
                                                                   datetime.fromisoformat(last_exclusive)))

    # What automation and the UI launch: one day, not a range; it must not rebuild the whole history.
    assert partition_vars(window("2024-03-01", "2024-03-02", single=True)) == \
        {"min_date": "2024-03-01", "max_date": "2024-03-01"}
    assert partition_vars(window("2024-03-01", "2024-03-08", single=False)) == \
        {"min_date": "2024-03-01", "max_date": "2024-03-07"}
    assert partition_vars(SimpleNamespace(has_partition_key=False, has_partition_key_range=False)) == {}
