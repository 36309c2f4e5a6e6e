"""What killed processes leave behind is cleaned up: temp files of a writer killed before its rename, runs
whose process died (run monitoring), and a fresh instance opened by several processes at once."""

import os
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import yaml
from dagster._core.instance.config import dagster_instance_config

from btc_platform.config import prepare_instance_home
from btc_platform.lake import Lake, PartitionRef
from btc_platform.storage import sweep_local_leftovers

ROOT = Path(__file__).resolve().parents[2]
REF = PartitionRef("raw", "coinbase_candles", pd.Timestamp("2024-01-02").date(), symbol="BTC-USD", interval="1m")

# A writer killed at the rename, after its temp file is written and synced.
KILLED_WRITER = """
import os, signal, sys
import pandas as pd
from btc_platform.lake import Lake, PartitionRef
os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
ref = PartitionRef("raw", "coinbase_candles", pd.Timestamp("2024-01-02").date(), symbol="BTC-USD", interval="1m")
Lake(sys.argv[1]).write(ref, pd.DataFrame({"close": [1.0, 2.0]}))
"""


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_writer_killed_before_its_rename_leaves_a_temp_file_the_maintenance_job_sweeps(tmp_path):
    from btc_platform.defs.maintenance.jobs import lake_maintenance
    from btc_platform.defs.resources import LakeResource

    lake_url = tmp_path / "lake"
    lake = Lake(str(lake_url))
    lake.write(REF, pd.DataFrame({"close": [0.5]}))  # the partition as it was
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(lake_url)], cwd=ROOT, timeout=120)
    assert done.returncode == -9
    [left] = [p for p in lake_url.rglob("*") if p.name.endswith(".tmp")]
    assert lake.read(REF)["close"].tolist() == [0.5]  # readers never see it

    def sweep(older_than_minutes: int) -> list[str]:
        config = {"ops": {"sweep_lake_staging": {"config": {"older_than_minutes": older_than_minutes}}}}
        result = lake_maintenance.execute_in_process(run_config=config,
                                                     resources={"lake": LakeResource(url=str(lake_url))})
        return result.output_for_node("sweep_lake_staging")

    assert sweep(60) == [] and left.exists()  # young: may be a write in progress
    age(left, 2 * 3600)
    assert sweep(60) == [str(left)] and not left.exists()
    assert lake.read(REF)["close"].tolist() == [0.5]


def test_only_stale_leftovers_are_swept(tmp_path):
    names = {
        "lake/raw/x/.0123456789abcdef0123456789abcdef.tmp": True,  # Lake._put_atomic
        "models/m/.config=a.1a2b3c4d.tmp/model.json": True,  # a model folder staged, never renamed
        "models/m/.config=a.old-1a2b3c4d/model.json": True,  # folders.replace_folder's aside copy
        "models/champion.json.1a2b3c4d.tmp": True,
        "lake/raw/x/part-000.parquet": False,
        "lake/raw/x/_quality.json": False,
        "models/m/config=a/model.json": False,
        "models/notes.tmp": False,  # not a writer's temp name
    }
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    fresh = tmp_path / "lake/raw/x/.fedcba9876543210fedcba9876543210.tmp"
    fresh.write_text("a write in progress")
    for path in tmp_path.rglob("*"):
        if path != fresh:
            age(path, 3 * 3600)

    removed = sweep_local_leftovers(str(tmp_path), timedelta(hours=1))
    assert len(removed) == 4 and fresh.exists()
    for name, stale in names.items():
        assert (tmp_path / name).exists() is not stale, name


def test_the_local_instance_monitors_runs(tmp_path):
    prepare_instance_home(tmp_path)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_start_timeout_seconds == 180
        assert 3600 <= instance.run_monitoring_max_runtime_seconds <= 24 * 3600
    assert yaml.safe_load((tmp_path / "dagster.yaml").read_text())["telemetry"] == {"enabled": False}


def test_an_existing_local_instance_gets_run_monitoring_and_keeps_its_settings(tmp_path):
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\nnux:\n  enabled: false\n")
    prepare_instance_home(tmp_path)
    prepare_instance_home(tmp_path)  # once only
    config = yaml.safe_load((tmp_path / "dagster.yaml").read_text())
    assert config["nux"] == {"enabled": False} and config["run_monitoring"]["enabled"] is True
    assert (tmp_path / "dagster.yaml").read_text().count("run_monitoring:") == 1


def test_the_production_instance_monitors_runs(monkeypatch):
    config, _ = dagster_instance_config(str(ROOT / "deploy"))
    monitoring = config["run_monitoring"]
    assert monitoring["enabled"] is True and monitoring["start_timeout_seconds"] > 0
    assert monitoring["max_runtime_seconds"] > 0 and monitoring["cancel_timeout_seconds"] > 0
    values = yaml.safe_load((ROOT / "deploy/helm/values.yaml").read_text())
    assert values["dagsterDaemon"]["runMonitoring"]["enabled"] is True


OPEN_INSTANCE = """
import os, sys
from pathlib import Path
import dagster as dg
from btc_platform.config import prepare_instance_home
prepare_instance_home(Path(os.environ["DAGSTER_HOME"]))
with dg.DagsterInstance.get() as instance:
    instance.get_runs(limit=1)
"""


def test_a_fresh_instance_opened_by_several_processes_at_once_stays_whole(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_INSTANCE], cwd=ROOT, env=env, stderr=subprocess.PIPE)
             for _ in range(4)]
    errors = [p.communicate(timeout=300)[1].decode()[-2000:] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    for db in ("history/runs.db", "history/runs/index.db", "schedules/schedules.db"):
        with sqlite3.connect(home / db) as con:
            heads = con.execute("SELECT version_num FROM alembic_version").fetchall()
        assert len(heads) == 1, (db, heads)
    # And the next process opens it as usual.
    assert subprocess.run([sys.executable, "-c", OPEN_INSTANCE], cwd=ROOT, env=env, timeout=300).returncode == 0
