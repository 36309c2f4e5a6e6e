"""What a UI backfill of the ingest assets plus everything downstream plans: exactly the requested days
(and products) on every partitioned asset, run in chunks, never a day after the last closed UTC day.

Planned with Dagster's own backfill planning (the one the UI's "Launch backfill" calls), on the real
definitions.
"""

from datetime import date, datetime, timedelta, timezone

import dagster as dg
import pytest
from dagster._core.execution.asset_backfill import AssetBackfillData

from btc_platform.defs.partitions import last_closed_day, multi_key

SYMBOLS = ("BTC-USD", "ETH-USD")


def plan(first: date, days: int, now: datetime) -> tuple[dg.AssetSelection, AssetBackfillData]:
    from btc_platform.definitions import defs

    graph = defs.resolve_asset_graph()
    selection = dg.AssetSelection.assets("coinbase_candles_1m").downstream()
    keys = [str(multi_key(first + timedelta(days=n), s)) for n in range(days) for s in SYMBOLS]
    with dg.instance_for_test() as instance:
        data = AssetBackfillData.from_asset_partitions(graph, keys, list(selection.resolve(graph)), instance,
                                                       now.timestamp(), all_partitions=False)
    return graph, data


@pytest.mark.parametrize("days_ago", [800, 0], ids=["history", "latest-closed-days"])
def test_a_five_day_backfill_plans_those_five_days_on_every_asset(days_ago):
    now = datetime.now(timezone.utc)
    last = last_closed_day(now)
    first = last - timedelta(days=days_ago + 4)
    graph, data = plan(first, 5, now)
    days = {(first + timedelta(days=n)).isoformat() for n in range(5)}
    by_symbol = {f"{d}|{s}" for d in days for s in SYMBOLS}

    subsets = data.target_subset.partitions_subsets_by_asset_key
    # Processed (candles, features, targets), monitoring, warehouse loads and the dbt marts.
    assert {"technical_features_1d", "forward_targets_1h", "forward_targets_90d_1h", "multi_timeframe_features_1h",
            "training_table_1h", "warehouse_technical_features_1d"} <= {k.to_user_string() for k in subsets}
    wrong = {}
    for key, subset in subsets.items():
        planned = set(map(str, subset.get_partition_keys()))
        expected = by_symbol if "|" in next(iter(planned)) else days
        if planned != expected:
            wrong[key.to_user_string()] = sorted(planned - expected)[:3] or sorted(expected - planned)[:3]
    assert wrong == {}, f"assets planned other days than the 5 asked: {wrong}"


def test_the_backfilled_assets_run_in_chunks_and_ingest_holds_its_vendor_pool():
    graph, data = plan(date(2024, 3, 1), 5, datetime(2024, 3, 20, tzinfo=timezone.utc))
    for key in data.target_subset.partitions_subsets_by_asset_key:
        policy = graph.get(key).backfill_policy
        # One run per chunk of days (per product), not one run per day.
        assert policy is not None and (policy.max_partitions_per_run or 5) >= 5, key.to_user_string()
    from btc_platform.definitions import defs

    assert defs.resolve_assets_def("coinbase_candles_1m").op.pool == "vendor_coinbase"
