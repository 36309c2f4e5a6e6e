"""The datasets leg with BTC_PLATFORM_DATASETS_DIR=gs://...: the training splits land on GCS.

The training table is seeded in the warehouse (as the training sensor's tests do): building it from
the lake through dbt needs ~19 days of candles (sma_200 warm-up, 5-day targets, three purged splits),
too slow for this folder; the lake -> warehouse leg on GCS is tested in test_graph_on_gcs.
"""

from btc_platform_tests.defs.test_training_sensor import training_table, write_table


def test_training_splits_land_on_gcs(run, gcs_env, bucket, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a writer using local paths would turn gs://b/x into ./gs:/b/x: seen here
    datasets_url = gcs_env["BTC_PLATFORM_LAKE_URL"].rsplit("/", 1)[0] + "/datasets"
    prefix = datasets_url.removeprefix(f"gs://{bucket.name}/") + "/"
    monkeypatch.setenv("BTC_PLATFORM_DATASETS_DIR", datasets_url)
    write_table(gcs_env["BTC_PLATFORM_DUCKDB_PATH"], training_table(seed=1))

    splits = run(["training_splits_1h"])

    [event] = splits.get_asset_materialization_events()
    version = event.materialization.metadata["version"].value
    assert str(event.materialization.metadata["path"].value).startswith(datasets_url + "/")
    on_gcs = [b.name.removeprefix(prefix) for b in bucket.list_blobs(prefix=prefix)]
    assert any(n.startswith(f"training_splits_1h/version={version}/") and n.endswith(".parquet") for n in on_gcs)
    assert not (tmp_path / "gs:").exists() and not (tmp_path / "datasets").exists()  # nothing local
