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
