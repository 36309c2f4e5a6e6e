import subprocess
import sys
from datetime import date

import duckdb
import pandas as pd
import pytest

from btc_platform.warehouse import read_table, replace_partition, table_row_count

TABLE = "raw.coinbase_candles_1m"


def candles(day: str, symbol: str = "BTC-USD", n: int = 5, close: float = 100.0) -> pd.DataFrame:
    ts = pd.date_range(day, periods=n, freq="1min", tz="UTC")
    return pd.DataFrame(
        {
            "ts": ts,
            "symbol": symbol,
            "open": close,
            "high": close + 1,
            "low": close - 1,
            "close": [close + i for i in range(n)],
            "volume": 1.5,
            "source": "coinbase",
            "ingested_at": pd.Timestamp("2024-01-03", tz="UTC"),
        }
    )


def part(day: str, symbol: str = "BTC-USD") -> dict[str, object]:
    return {"partition_date": date.fromisoformat(day), "symbol": symbol}


@pytest.fixture
def db(tmp_path):
    return tmp_path / "sub" / "warehouse.duckdb"


def test_insert_creates_typed_table_with_partition_column(db):
    assert replace_partition(db, TABLE, candles("2024-01-01"), partition=part("2024-01-01")) == 5
    con = duckdb.connect(str(db), read_only=True)
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_schema = 'raw' AND table_name = 'coinbase_candles_1m'").fetchall())
    con.close()
    assert types["ts"] == "TIMESTAMP WITH TIME ZONE"
    assert types["ingested_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["close"] == "DOUBLE"
    assert types["symbol"] == "VARCHAR"
    assert types["partition_date"] == "DATE"
    out = read_table(db, TABLE)
    assert str(out["ts"].dt.tz) == "UTC"
    assert out["close"].tolist() == [100.0, 101.0, 102.0, 103.0, 104.0]


def test_rerun_replaces_partition_and_leaves_others(db):
    replace_partition(db, TABLE, candles("2024-01-01"), partition=part("2024-01-01"))
    replace_partition(db, TABLE, candles("2024-01-02", n=3), partition=part("2024-01-02"))
    eth = candles("2024-01-01", "ETH-USD", n=4)
    replace_partition(db, TABLE, eth, partition=part("2024-01-01", "ETH-USD"))
    assert table_row_count(db, TABLE) == 12

    # Same partition again, new values: replaced, not appended.
    assert replace_partition(db, TABLE, candles("2024-01-01", close=200.0), partition=part("2024-01-01")) == 5
    assert table_row_count(db, TABLE) == 12
    counts = read_table(
        db, "SELECT symbol, partition_date, count(*) AS n, min(close) AS lo FROM raw.coinbase_candles_1m "
            "GROUP BY ALL ORDER BY ALL"
    )
    assert counts[["symbol", "n", "lo"]].values.tolist() == [
        ["BTC-USD", 5, 200.0],
        ["BTC-USD", 3, 100.0],
        ["ETH-USD", 4, 100.0],
    ]
    dupes = read_table(db, "SELECT symbol, ts FROM raw.coinbase_candles_1m GROUP BY ALL HAVING count(*) > 1")
    assert dupes.empty


def test_empty_frame_clears_partition(db):
    replace_partition(db, TABLE, candles("2024-01-01"), partition=part("2024-01-01"))
    assert replace_partition(db, TABLE, candles("2024-01-01").iloc[:0], partition=part("2024-01-01")) == 0
    assert table_row_count(db, TABLE) == 0


def test_empty_first_load_still_types_columns(db):
    empty = candles("2024-01-01").iloc[:0]
    replace_partition(db, "processed.x", empty, partition={"partition_date": date(2024, 1, 1)})
    con = duckdb.connect(str(db), read_only=True)
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'x'").fetchall())
    con.close()
    assert types["symbol"] == "VARCHAR"
    assert types["partition_date"] == "DATE"


@pytest.mark.parametrize("bad", ["Close", "bad-col", "1st", "x; drop table y"])
def test_bad_column_name_is_rejected(db, bad):
    frame = candles("2024-01-01").rename(columns={"close": bad})
    with pytest.raises(ValueError, match="column") as err:
        replace_partition(db, TABLE, frame, partition=part("2024-01-01"))
    assert repr(bad) in str(err.value)
    assert not db.exists()  # rejected before any connection


@pytest.mark.parametrize("table", ["coinbase_candles_1m", "raw.Candles", "raw.c.d", "raw.c;--"])
def test_bad_table_name_is_rejected(db, table):
    with pytest.raises(ValueError, match="table"):
        replace_partition(db, table, candles("2024-01-01"), partition=part("2024-01-01"))


def test_bad_partition_key_is_rejected(db):
    with pytest.raises(ValueError, match="'Partition Date'"):
        replace_partition(db, TABLE, candles("2024-01-01"), partition={"Partition Date": date(2024, 1, 1)})


def test_frame_outside_partition_is_rejected(db):
    with pytest.raises(ValueError, match="'symbol'"):
        replace_partition(db, TABLE, candles("2024-01-01", "ETH-USD"), partition=part("2024-01-01"))


def test_failed_load_rolls_back_and_keeps_old_partition(db):
    replace_partition(db, TABLE, candles("2024-01-01"), partition=part("2024-01-01"))
    before = read_table(db, TABLE)

    bad = candles("2024-01-01", n=7)
    bad["close"] = "not a number"  # VARCHAR into the DOUBLE column fails after the DELETE ran
    with pytest.raises(duckdb.Error):
        replace_partition(db, TABLE, bad, partition=part("2024-01-01"))

    pd.testing.assert_frame_equal(read_table(db, TABLE), before)
    # The file is not left locked or in a transaction: a good load still works.
    assert replace_partition(db, TABLE, candles("2024-01-01", n=2), partition=part("2024-01-01")) == 2


def test_frame_may_carry_partition_columns_read_back(db):
    replace_partition(db, TABLE, candles("2024-01-01"), partition=part("2024-01-01"))
    again = read_table(db, TABLE)  # partition_date comes back as datetime64
    again["close"] = 7.0
    assert replace_partition(db, TABLE, again, partition=part("2024-01-01")) == 5
    assert read_table(db, "SELECT DISTINCT close, partition_date FROM raw.coinbase_candles_1m").values.tolist() == [
        [7.0, pd.Timestamp("2024-01-01")]
    ]


def test_read_table_is_read_only(db):
    replace_partition(db, TABLE, candles("2024-01-01"), partition=part("2024-01-01"))
    with pytest.raises(duckdb.Error):
        read_table(db, "DELETE FROM raw.coinbase_candles_1m")
    assert table_row_count(db, TABLE) == 5


def test_waits_for_another_process_holding_the_file(db):
    replace_partition(db, TABLE, candles("2024-01-01"), partition=part("2024-01-01"))
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('held', flush=True); "
                               "time.sleep(1.0); c.close()"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert replace_partition(db, TABLE, candles("2024-01-02"), partition=part("2024-01-02")) == 5
    finally:
        holder.wait(timeout=30)
    assert table_row_count(db, TABLE) == 10


def test_a_dataset_that_gains_columns_widens_its_table(tmp_path):
    import datetime as _dt

    import pandas as _pd

    from btc_platform.warehouse.duckdb_store import read_table, replace_partition

    db = tmp_path / "w.duckdb"
    old = _pd.DataFrame({"symbol": ["BTC-USD"], "rsi_14": [55.0]})
    replace_partition(db, "processed.f", old, partition={"partition_date": _dt.date(2024, 1, 1), "symbol": "BTC-USD"})
    wider = _pd.DataFrame({"symbol": ["BTC-USD"], "rsi_14": [60.0], "adx_14": [21.5]})
    replace_partition(db, "processed.f", wider, partition={"partition_date": _dt.date(2024, 1, 2), "symbol": "BTC-USD"})
    table = read_table(db, "select * from processed.f order by partition_date")
    assert table["adx_14"].isna().tolist() == [True, False] and table["rsi_14"].tolist() == [55.0, 60.0]
