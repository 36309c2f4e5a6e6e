"""The Lake on the GCS emulator: round trips, replacement, JSON documents, listings."""

from datetime import date

import pandas as pd

from btc_platform.lake import Lake, PartitionRef

REF = PartitionRef("raw", "coinbase_candles", date(2024, 1, 2), symbol="BTC-USD", interval="1m")
PARTITION = "raw/coinbase_candles/symbol=BTC-USD/interval=1m/yyyy=2024/mm=01/dd=02"


def frame(n=3, close=1.0):
    return pd.DataFrame({
        "ts": pd.date_range("2024-01-02", periods=n, freq="min", tz="UTC"),
        "symbol": "BTC-USD",
        "close": [close] * n,
    })


def test_a_partition_round_trips_and_a_rewrite_replaces_it(gcs_lake, gcs_env, stored):
    assert gcs_lake.read(REF) is None and not gcs_lake.exists(REF)
    result = gcs_lake.write(REF, frame(close=1.0))
    assert result.path == f"{gcs_env['BTC_PLATFORM_LAKE_URL']}/{PARTITION}/part-000.parquet"
    assert stored() == [f"{PARTITION}/part-000.parquet"]  # published, staging object gone
    pd.testing.assert_frame_equal(gcs_lake.read(REF), frame().astype({"ts": "datetime64[us, UTC]"}))

    gcs_lake.write(REF, frame(n=2, close=2.0))
    assert gcs_lake.exists(REF)
    assert gcs_lake.read(REF)["close"].tolist() == [2.0, 2.0]
    assert gcs_lake.read(REF, columns=["close"]).columns.tolist() == ["close"]
    assert stored() == [f"{PARTITION}/part-000.parquet"]


def test_json_beside_the_data_and_documents_outside_it(gcs_lake, gcs_env, stored):
    gcs_lake.write(REF, frame())
    path = gcs_lake.write_json(REF, "_quality.json", {"coverage": 1.0})
    assert path == f"{gcs_env['BTC_PLATFORM_LAKE_URL']}/{PARTITION}/_quality.json"
    assert gcs_lake.read_json(REF, "_quality.json") == {"coverage": 1.0}
    assert gcs_lake.read_json(REF, "_missing.json") is None

    gcs_lake.put_document("_status/vendors/coinapi/ohlcv.json", {"status": "ok"})
    gcs_lake.put_document("_status/vendors/fred/series.json", {"status": "no_access"})
    gcs_lake.put_document("_status/vendors/coinapi/ohlcv.json", {"status": "rate_limited"})
    assert gcs_lake.get_document("_status/vendors/coinapi/ohlcv.json") == {"status": "rate_limited"}
    assert gcs_lake.list_documents("_status/vendors") == {
        "_status/vendors/coinapi/ohlcv.json": {"status": "rate_limited"},
        "_status/vendors/fred/series.json": {"status": "no_access"},
    }
    gcs_lake.delete_document("_status/vendors/fred/series.json")
    gcs_lake.delete_document("_status/vendors/fred/series.json")  # already gone: no error
    assert list(gcs_lake.list_documents("_status/vendors")) == ["_status/vendors/coinapi/ohlcv.json"]
    assert gcs_lake.list_documents("_nothing_here") == {}
    assert gcs_lake.get_document("_status/none.json") is None

    url = gcs_lake.put_bytes("_reports/coverage/coverage.png", b"\x89PNG")
    assert url == f"{gcs_env['BTC_PLATFORM_LAKE_URL']}/_reports/coverage/coverage.png"
    assert stored("_reports") == ["_reports/coverage/coverage.png"]
    assert not any("_staging" in name for name in stored())


def test_what_another_writer_changed_is_seen_despite_gcsfs_caches(gcs_lake, gcs_env, bucket):
    """Another process writes through its own client; this one's listings and sizes must not go stale."""
    gcs_lake.write(REF, frame(n=2))
    gcs_lake.put_document("_status/a.json", {"v": 1})
    assert list(gcs_lake.list_documents("_status")) == ["_status/a.json"]
    gcs_lake.fs.ls(f"{gcs_lake.root}/{PARTITION}", detail=True)  # fill the listing cache with the old size

    other = Lake(gcs_env["BTC_PLATFORM_LAKE_URL"], storage_options={"skip_instance_cache": True})
    other.write(REF, frame(n=500, close=3.0))  # a bigger object: a cached size would cut it short
    other.put_document("_status/a.json", {"v": 2, "longer": "x" * 100})
    bucket.blob(f"{gcs_lake.gcs.prefix}/_status/b.json").upload_from_string(b'{"v": 3}')

    assert len(gcs_lake.read(REF)) == 500
    assert gcs_lake.list_documents("_status") == {"_status/a.json": {"v": 2, "longer": "x" * 100},
                                                  "_status/b.json": {"v": 3}}
    bucket.blob(f"{gcs_lake.gcs.prefix}/_status/b.json").delete()
    assert list(gcs_lake.list_documents("_status")) == ["_status/a.json"]


def test_a_local_lake_has_no_gcs_publisher(tmp_path):
    lake = Lake(str(tmp_path))
    assert lake.gcs is None and lake.sweep_staging() == []


def test_the_coverage_chart_writes_to_a_gs_url_not_a_local_folder(gcs_env, stored, tmp_path, monkeypatch):
    from btc_platform.monitoring.coverage_chart import coverage_matrix, write_coverage_png, write_coverage_svg

    monkeypatch.chdir(tmp_path)
    matrix = coverage_matrix([{"dataset": "d", "partition": "2024-01-02", "coverage": 0.5, "expected_bars": 1440}])
    png = write_coverage_png(matrix, f"{gcs_env['BTC_PLATFORM_LAKE_URL']}/_reports/c.png")
    write_coverage_svg(matrix, f"{gcs_env['BTC_PLATFORM_LAKE_URL']}/_reports/c.svg")
    assert stored("_reports") == ["_reports/c.png", "_reports/c.svg"]
    assert png.startswith(b"\x89PNG") and list(tmp_path.iterdir()) == []
