"""A run over several partitions (a backfill chunk) records each partition with its own metadata: row
count, path and preview of that partition, not the run's totals."""

from datetime import date, timedelta

import dagster as dg
import pandas as pd

from btc_platform.defs.metadata import frame_metadata
from btc_platform.defs.partitions import build_each_partition, daily_by_symbol, range_tags

FIRST = date(2024, 3, 1)


@dg.asset(partitions_def=daily_by_symbol, backfill_policy=dg.BackfillPolicy.multi_run(31))
def per_day(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    def build(key, day, symbol):
        rows = (day - FIRST).days + 1  # a different row count per day
        frame = pd.DataFrame({"symbol": [symbol] * rows, "n": range(rows)})
        return frame_metadata(frame, f"/lake/{symbol}/{day}/part-000.parquet")

    return build_each_partition(context, build)


def test_each_partition_of_a_multi_day_run_carries_its_own_rows_path_and_preview(instance):
    result = dg.materialize([per_day], instance=instance, tags=range_tags(FIRST, FIRST + timedelta(days=2), "ETH-USD"))
    assert result.success
    events = {str(e.partition): e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert sorted(events) == [f"{FIRST + timedelta(days=n)}|ETH-USD" for n in range(3)]
    for n in range(3):
        meta = events[f"{FIRST + timedelta(days=n)}|ETH-USD"]
        assert meta["dagster/row_count"].value == n + 1
        assert meta["path"].value == f"/lake/ETH-USD/{FIRST + timedelta(days=n)}/part-000.parquet"
        assert len(meta["preview"].value.records) == min(n + 1, 5)
        assert meta["run_partitions"].value == 3 and meta["run_rows_total"].value == 6  # labelled as the run's
    # What the UI shows for a partition: its latest materialization.
    latest = instance.get_latest_materialization_event(dg.AssetKey("per_day"))
    assert latest.asset_materialization.metadata["dagster/row_count"].value in {1, 2, 3}
    record = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("per_day"), asset_partitions=[f"{FIRST}|ETH-USD"]), limit=1)
    assert record.records[0].asset_materialization.metadata["dagster/row_count"].value == 1
