"""The lake: hive layout, round trips, and writes that are whole or absent."""

import os
from datetime import date

import pandas as pd
import pytest

from btc_platform.lake import Lake, PartitionRef

REF = PartitionRef("raw", "coinbase_candles", date(2024, 1, 2), symbol="BTC-USD", interval="1m")


def frame(n=3, close=1.0):
    return pd.DataFrame({
        "ts": pd.date_range("2024-01-02", periods=n, freq="min", tz="UTC"),
        "symbol": "BTC-USD",
        "close": [close] * n,
    })


def test_hive_layout():
    assert REF.relpath() == "raw/coinbase_candles/symbol=BTC-USD/interval=1m/yyyy=2024/mm=01/dd=02"
    assert PartitionRef("raw", "fred", date(2024, 1, 2)).relpath() == "raw/fred/yyyy=2024/mm=01/dd=02"


def test_round_trip_keeps_utc_microsecond_timestamps(tmp_path):
    lake = Lake(str(tmp_path))
    result = lake.write(REF, frame())
    assert result.rows == 3 and result.bytes > 0
    assert result.path == f"{tmp_path}/{REF.relpath()}/part-000.parquet"
    back = lake.read(REF)
    assert str(back["ts"].dtype) == "datetime64[us, UTC]"
    pd.testing.assert_frame_equal(back, frame().astype({"ts": "datetime64[us, UTC]"}))
    assert lake.read(PartitionRef("raw", "x", date(2024, 1, 1))) is None


def test_rewrite_replaces_and_a_failed_write_keeps_the_old_partition(tmp_path, monkeypatch):
    lake = Lake(str(tmp_path))
    lake.write(REF, frame(close=1.0))
    lake.write(REF, frame(close=2.0))
    assert lake.read(REF)["close"].tolist() == [2.0] * 3

    def crash(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        lake.write(REF, frame(close=3.0))
    monkeypatch.undo()
    assert lake.read(REF)["close"].tolist() == [2.0] * 3
    folder = tmp_path / REF.relpath()
    assert sorted(p.name for p in folder.iterdir()) == ["part-000.parquet"]  # no temporary file left


def test_read_many_skips_missing_days_and_json_sits_beside_the_data(tmp_path):
    lake = Lake(str(tmp_path))
    lake.write(REF, frame())
    other = PartitionRef("raw", "coinbase_candles", date(2024, 1, 3), symbol="BTC-USD", interval="1m")
    assert len(lake.read_many([REF, other])) == 3
    path = lake.write_json(REF, "_quality.json", {"coverage": 1.0})
    assert path == f"{tmp_path}/{REF.relpath()}/_quality.json"
    assert lake.read_json(REF, "_quality.json") == {"coverage": 1.0}
