"""The BigQuery store against bqemulator: schemas, partitioning, descriptions, exact partition replaces."""

from datetime import date

import pandas as pd
import pytest

from btc_platform_tests.bigquery.conftest import hourly

D1, D2 = date(2024, 1, 1), date(2024, 1, 2)
TABLE = "processed.candles_1h"


def load(store, day, symbol, frame, **docs):
    return store.replace_partition(TABLE, frame, partition={"partition_date": day, "symbol": symbol}, **docs)


def by_partition(store) -> pd.DataFrame:
    sql = (f"SELECT partition_date, symbol, COUNT(*) AS n_rows, SUM(close) AS total "
           f"FROM `{store.table_id(TABLE)}` GROUP BY 1, 2 ORDER BY 1, 2")
    frame = store.read(sql)
    return frame.assign(partition_date=frame["partition_date"].astype(str))


def test_table_is_created_with_explicit_schema_partitioning_clustering_and_descriptions(bq_store):
    rows = load(bq_store, D1, "BTC-USD", hourly(D1, "BTC-USD", 100.0), description="Hourly candles.",
                column_descriptions={"ts": "Hour open time (UTC).", "close": "Last price."})
    assert rows == 4

    table = bq_store.client.get_table(bq_store.table_id(TABLE))
    assert table.dataset_id == bq_store.datasets["processed"] and table.dataset_id.endswith("_processed")
    assert [(f.name, f.field_type) for f in table.schema] == [
        ("ts", "TIMESTAMP"), ("symbol", "STRING"), ("close", "FLOAT64"), ("n_source_bars", "INT64"),
        ("is_filled", "BOOL"), ("source", "STRING"), ("note", "STRING"), ("partition_date", "DATE")]
    assert table.time_partitioning.type_ == "DAY" and table.time_partitioning.field == "partition_date"
    assert table.clustering_fields == ["symbol"]
    assert table.description == "Hourly candles."
    described = {f.name: f.description for f in table.schema}
    assert described["ts"] == "Hour open time (UTC)." and described["close"] == "Last price."
    assert described["symbol"] is None

    back = bq_store.read(TABLE).sort_values("ts", ignore_index=True)
    assert back["ts"].tolist() == hourly(D1, "BTC-USD", 100.0)["ts"].tolist()  # UTC, microseconds kept
    assert back["close"].tolist() == [100.0, 101.0, 102.0, 103.0]
    assert back["note"].isna().all() and bq_store.table_row_count(TABLE) == 4


def test_reload_replaces_exactly_that_day_and_symbol(bq_store):
    for day in (D1, D2):
        for symbol, close in (("BTC-USD", 100.0), ("ETH-USD", 10.0)):
            load(bq_store, day, symbol, hourly(day, symbol, close))
    before = by_partition(bq_store)

    assert load(bq_store, D1, "BTC-USD", hourly(D1, "BTC-USD", 500.0, hours=2)) == 2
    after = by_partition(bq_store)
    changed = after[(after["partition_date"] == "2024-01-01") & (after["symbol"] == "BTC-USD")]
    assert changed[["n_rows", "total"]].values.tolist() == [[2, 1001.0]]
    untouched = after.drop(changed.index)
    pd.testing.assert_frame_equal(untouched.reset_index(drop=True),
                                  before.drop(changed.index).reset_index(drop=True))
    # Idempotent: the same partition again leaves the same table; no staging tables are left behind.
    load(bq_store, D1, "BTC-USD", hourly(D1, "BTC-USD", 500.0, hours=2))
    pd.testing.assert_frame_equal(by_partition(bq_store), after)
    tables = [t.table_id for t in bq_store.client.list_tables(bq_store.datasets["processed"])]
    assert tables == ["candles_1h"]


def test_empty_frame_empties_its_partition_only(bq_store):
    load(bq_store, D1, "BTC-USD", hourly(D1, "BTC-USD", 100.0))
    load(bq_store, D1, "ETH-USD", hourly(D1, "ETH-USD", 10.0))
    assert load(bq_store, D1, "BTC-USD", hourly(D1, "BTC-USD", 100.0).iloc[:0]) == 0
    assert by_partition(bq_store)["symbol"].tolist() == ["ETH-USD"]


def test_a_wider_partition_adds_columns_and_older_rows_read_null(bq_store):
    load(bq_store, D1, "BTC-USD", hourly(D1, "BTC-USD", 100.0))
    wider = hourly(D2, "BTC-USD", 200.0, rsi_14=55.0, roc_20=0.5)
    load(bq_store, D2, "BTC-USD", wider, column_descriptions={"rsi_14": "RSI over 14 bars."})

    table = bq_store.client.get_table(bq_store.table_id(TABLE))
    fields = {f.name: f for f in table.schema}
    assert [f.name for f in table.schema][-2:] == ["rsi_14", "roc_20"]
    assert fields["rsi_14"].field_type == "FLOAT64" and fields["rsi_14"].description == "RSI over 14 bars."
    back = bq_store.read(f"SELECT partition_date, rsi_14, roc_20 FROM `{table.full_table_id.replace(':', '.')}`")
    by_day = back.groupby(back["partition_date"].astype(str))[["rsi_14", "roc_20"]].count()
    assert by_day.loc["2024-01-01"].tolist() == [0, 0] and by_day.loc["2024-01-02"].tolist() == [4, 4]
    # A narrower partition after that still loads (its missing columns read NULL).
    load(bq_store, D1, "BTC-USD", hourly(D1, "BTC-USD", 300.0))
    assert bq_store.table_row_count(TABLE) == 8


def test_rows_outside_the_partition_are_refused(bq_store):
    frame = hourly(D1, "BTC-USD", 100.0)
    frame.loc[0, "symbol"] = "ETH-USD"
    with pytest.raises(ValueError, match="symbol"):
        load(bq_store, D1, "BTC-USD", frame)


def test_zones_map_to_their_datasets(bq_store):
    project = bq_store.client.project
    prefix = bq_store.datasets["raw"].removesuffix("raw")
    assert bq_store.table_id("raw.coinbase_candles_1m") == f"{project}.{prefix}raw.coinbase_candles_1m"
    assert bq_store.table_id("marts.training_table_1h") == f"{project}.{prefix}marts.training_table_1h"
    with pytest.raises(ValueError, match="zone"):
        bq_store.table_id("elsewhere.table")
