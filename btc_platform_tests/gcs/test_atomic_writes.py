"""Partition writes on GCS: a writer that dies before publishing leaves nothing visible, a rewrite
replaces, and a writer that raced another one is told instead of silently overwriting it."""

import subprocess
import sys
import textwrap
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta

import pandas as pd
import pytest
from google.cloud import storage

from btc_platform.gcs_publish import ConcurrentWriteError, GcsPublisher
from btc_platform.lake import Lake

from .test_lake_on_gcs import PARTITION, REF, frame

OTHER_DAY = replace(REF, day=REF.day + timedelta(days=1))


def test_a_failed_publish_keeps_the_old_partition_and_the_next_write_succeeds(gcs_lake, stored, monkeypatch):
    gcs_lake.write(REF, frame(close=1.0))

    def crash(self, staged, key):
        raise ConnectionError("network gone between upload and publish")

    with monkeypatch.context() as patched:
        patched.setattr(GcsPublisher, "publish", crash)
        with pytest.raises(ConnectionError):
            gcs_lake.write(REF, frame(close=2.0))
        with pytest.raises(ConnectionError):
            gcs_lake.write(OTHER_DAY, frame(close=2.0))
    assert gcs_lake.read(REF)["close"].tolist() == [1.0] * 3  # the old partition, whole
    assert gcs_lake.read(OTHER_DAY) is None and not gcs_lake.exists(OTHER_DAY)  # the new one: absent
    assert stored() == [f"{PARTITION}/part-000.parquet"]  # staging objects cleaned up on the way out

    gcs_lake.write(OTHER_DAY, frame(close=3.0))
    assert gcs_lake.read(OTHER_DAY)["close"].tolist() == [3.0] * 3


KILLED_WRITER = textwrap.dedent("""
    import sys, time
    import pandas as pd
    from btc_platform.gcs_publish import GcsPublisher
    from btc_platform.lake import Lake, PartitionRef
    from datetime import date

    def stall(self, staged, key):  # uploaded, not yet published: the process dies here
        print("staged", staged.name, flush=True)
        time.sleep(120)

    GcsPublisher.publish = stall
    ref = PartitionRef("raw", "coinbase_candles", date(2024, 1, 2), symbol="BTC-USD", interval="1m")
    Lake(sys.argv[1]).write(ref, pd.DataFrame({"close": [9.0] * 1000}))
""")


def test_a_writer_killed_before_publishing_leaves_no_partition_and_a_sweepable_stage(gcs_lake, gcs_env, stored):
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, gcs_env["BTC_PLATFORM_LAKE_URL"]],
                              stdout=subprocess.PIPE, text=True)
    try:
        line = writer.stdout.readline()
    finally:
        writer.kill()
        writer.wait(timeout=30)
    assert line.startswith("staged ") and "/_staging/" in line
    staged_name = line.split()[1]

    assert gcs_lake.read(REF) is None and not gcs_lake.exists(REF)
    assert [name for name in stored() if not name.startswith("_staging/")] == []
    assert gcs_lake.sweep_staging(older_than=timedelta(hours=1)) == []  # may still be a live write
    assert gcs_lake.sweep_staging(older_than=timedelta(0)) == [f"gs://{gcs_lake.gcs.bucket_name}/{staged_name}"]
    assert stored() == []

    gcs_lake.write(REF, frame(close=4.0))
    assert gcs_lake.read(REF)["close"].tolist() == [4.0] * 3


def test_a_rerun_replaces_the_partition_with_the_same_rows(gcs_lake, stored):
    first = gcs_lake.write(REF, frame(n=5))
    again = gcs_lake.write(REF, frame(n=5))
    assert (again.rows, again.bytes) == (first.rows, first.bytes)
    back = gcs_lake.read(REF)
    assert len(back) == 5 and not back["ts"].duplicated().any()
    assert stored() == [f"{PARTITION}/part-000.parquet"]


@contextmanager
def another_writer_publishes_right_after_our_look(monkeypatch, other: Lake, df: pd.DataFrame):
    """While active, the first generation look of a write lets `other` publish `df` at REF just after
    it: the race a generation precondition exists for. Yields the names looked at."""
    looked, raced = storage.Bucket.get_blob, []

    def look_then_race(self, name, *args, **kwargs):
        seen = looked(self, name, *args, **kwargs)
        if not raced:
            raced.append(name)
            other.write(REF, df)
        return seen

    with monkeypatch.context() as patched:
        patched.setattr(storage.Bucket, "get_blob", look_then_race)
        yield raced


def test_a_writer_that_raced_another_is_told_and_the_winner_stays_whole(gcs_lake, gcs_env, stored, monkeypatch):
    gcs_lake.write(REF, frame(close=1.0))
    other = Lake(gcs_env["BTC_PLATFORM_LAKE_URL"])
    with another_writer_publishes_right_after_our_look(monkeypatch, other, frame(n=4, close=9.0)) as raced:
        with pytest.raises(ConcurrentWriteError, match="changed while it was being written"):
            gcs_lake.write(REF, frame(close=2.0))
    assert raced == [f"{gcs_lake.gcs.prefix}/{PARTITION}/part-000.parquet"]
    pd.testing.assert_series_equal(gcs_lake.read(REF)["close"], pd.Series([9.0] * 4, name="close"))
    assert stored() == [f"{PARTITION}/part-000.parquet"]


def test_a_writer_that_raced_another_with_the_same_bytes_succeeds(gcs_lake, gcs_env, monkeypatch):
    """Identical content published first (a re-run racing, or a retried rewrite) is not a conflict."""
    gcs_lake.write(REF, frame(close=1.0))
    other = Lake(gcs_env["BTC_PLATFORM_LAKE_URL"])
    with another_writer_publishes_right_after_our_look(monkeypatch, other, frame(close=2.0)) as raced:
        gcs_lake.write(REF, frame(close=2.0))
    assert raced and gcs_lake.read(REF)["close"].tolist() == [2.0] * 3


def test_the_maintenance_job_sweeps_what_a_dead_writer_staged(gcs_lake, gcs_env, stored):
    from btc_platform.defs.maintenance.jobs import lake_maintenance
    from btc_platform.defs.resources import LakeResource

    gcs_lake.gcs.upload_staging(b"half a partition", "application/octet-stream")  # what a dead writer leaves
    left = stored("_staging/")
    assert len(left) == 1

    def sweep(older_than_minutes: int) -> list[str]:
        config = {"ops": {"sweep_lake_staging": {"config": {"older_than_minutes": older_than_minutes}}}}
        result = lake_maintenance.execute_in_process(
            run_config=config, resources={"lake": LakeResource(url=gcs_env["BTC_PLATFORM_LAKE_URL"])})
        return result.output_for_node("sweep_lake_staging")

    assert sweep(60) == [] and stored("_staging/") == left  # young: may be a write in progress
    assert len(sweep(0)) == 1 and stored() == []
