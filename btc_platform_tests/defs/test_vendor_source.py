"""One vendor source per instance and lake, visible: `make ui`'s plan and its sandbox child process,
the source in run tags, ingest metadata and partition footers, the lake refusing another source unless
asked, and datasets refusing partitions of mixed origin."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date, timedelta

import pandas as pd
import pytest

from btc_platform.config import ALLOW_MIXED_SOURCES_ENV, SOURCE_ENV
from btc_platform.demo import step_failures
from btc_platform.defs.coinbase.assets import candles_ref
from btc_platform.defs.feargreed.assets import fear_greed_ref
from btc_platform.defs.partitions import multi_key, range_tags
from btc_platform.defs.source import SOURCE_TAG
from btc_platform.lake import Lake
from btc_platform.sources import (
    SourceMismatch,
    claim_instance,
    claim_lake,
    instance_source,
    lake_source,
    partition_origin,
    sandbox_source,
    with_origin,
)
from btc_platform.ui import build_plan, claim_sources, sandbox_process
from btc_platform_tests.conftest import graph_runner
from btc_platform_tests.defs.test_training_sensor import write_table
from btc_platform_tests.synthetic_tables import training_table

DAY = date(2024, 3, 4)
SANDBOX = "sandbox(seed=7)"


def candles_url(base: str) -> str:
    return (f"{base}/coinbase/products/BTC-USD/candles?granularity=60"
            "&start=2024-03-04T00:00:00%2B00:00&end=2024-03-04T00:59:00%2B00:00")


def refused(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2)
    except OSError:
        return True
    return False


# -- make ui: the plan, and the sandbox child ------------------------------------------------------

def test_ui_plan_starts_the_sandbox_the_instance_was_built_from(tmp_path):
    plan = build_plan([], {}, tmp_path)
    assert plan.home == (tmp_path / "data" / "dagster_home").resolve()
    assert plan.sandbox_argv[1:3] == ["-m", "btc_platform.sandbox"]
    assert plan.sandbox_argv[plan.sandbox_argv.index("--seed") + 1] == "7"  # the demo's seed
    assert plan.env[SOURCE_ENV] == SANDBOX and plan.env["DAGSTER_HOME"] == str(plan.home)
    assert plan.dagster_argv[1:4] == ["dev", "-w", "workspace.yaml"]

    # An instance built from another seed and a replayed product starts that sandbox again.
    klines = tmp_path / "klines"
    klines.mkdir()
    claim_instance(plan.home, sandbox_source(11, {"BTC-USD": klines}),
                   settings={"seed": 11, "replay": {"BTC-USD": str(klines)}})
    again = build_plan([], {}, tmp_path)
    assert again.sandbox_argv[again.sandbox_argv.index("--seed") + 1] == "11"
    assert f"--replay=BTC-USD={klines}" in again.sandbox_argv
    assert again.source == f"replay:BTC-USD={klines} sandbox(seed=11)" == again.env[SOURCE_ENV]


def test_live_has_its_own_instance_and_lake_and_never_shares_a_sandbox_one_unless_asked(tmp_path):
    live = build_plan(["--live", "-p", "3001"], {"DAGSTER_HOME": str(tmp_path / "data" / "dagster_home")}, tmp_path)
    assert live.sandbox_argv is None and live.source == "live" == live.env[SOURCE_ENV]
    assert live.home == (tmp_path / "data" / "live" / "dagster_home").resolve()
    assert live.env["BTC_PLATFORM_LAKE_URL"] == str(tmp_path / "data" / "live" / "lake") == live.lake_url
    assert live.dagster_argv[-2:] == ["-p", "3001"]

    # Pointed at the sandbox's instance and lake on purpose: refused, naming both sources ...
    env = {"DAGSTER_HOME": str(tmp_path / "home"), "BTC_PLATFORM_LAKE_URL": str(tmp_path / "lake")}
    claim_sources(build_plan([], env, tmp_path))
    with pytest.raises(SourceMismatch, match=r"holds data from sandbox\(seed=7\); this process uses live"):
        claim_sources(build_plan(["--live"], env, tmp_path))
    assert instance_source(tmp_path / "home")["sources"] == [SANDBOX]
    # ... unless mixing is asked for: then both records say so.
    claim_sources(build_plan(["--live", "--allow-mixed-sources"], env, tmp_path))
    for record in (instance_source(tmp_path / "home"), lake_source(Lake(str(tmp_path / "lake")))):
        assert record["sources"] == [SANDBOX, "live"] and record["mixed"] is True
    # An instance holding live data stays live without the flag.
    claim_instance(tmp_path / "live_home", "live")
    assert build_plan([], {"DAGSTER_HOME": str(tmp_path / "live_home")}, tmp_path).source == "live"


def test_the_sandbox_child_process_serves_and_stops(tmp_path):
    plan = build_plan([], {}, tmp_path)
    with sandbox_process(plan.sandbox_argv) as url:
        with urllib.request.urlopen(candles_url(url), timeout=10) as answer:
            assert answer.status == 200 and len(json.load(answer)) == 60
    assert refused(candles_url(url))


UI_SCRIPT = """
import sys
from btc_platform.ui import build_plan, run
plan = build_plan([], {"DAGSTER_HOME": sys.argv[1]})
plan.dagster_argv = [sys.executable, "-c", sys.argv[2], sys.argv[3]]  # stands in for dagster dev
sys.exit(run(plan))
"""
# What dagster dev sees: its environment, and the sandbox answering at the URL it was given.
FAKE_DAGSTER = """
import json, os, sys, time, urllib.request
env = {k: os.environ.get(k) for k in ("COINBASE_BASE_URL", "COINAPI_KEY", "BTC_PLATFORM_SOURCE", "DAGSTER_HOME")}
url = env["COINBASE_BASE_URL"] + "/products/BTC-USD/candles?granularity=60&start=2024-03-04T00:00:00%2B00:00&end=2024-03-04T00:59:00%2B00:00"
with urllib.request.urlopen(url, timeout=10) as answer:
    env["candles"] = len(json.load(answer))
env["pid"] = os.getpid()
open(sys.argv[1] + ".tmp", "w").write(json.dumps(env))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(120)
"""


def test_ui_runs_dagster_on_the_sandbox_and_stops_both_on_sigterm(tmp_path):
    seen = tmp_path / "seen.json"
    home = tmp_path / "home"
    ui = subprocess.Popen([sys.executable, "-c", UI_SCRIPT, str(home), FAKE_DAGSTER, str(seen)],
                          env={**os.environ, "BTC_PLATFORM_LAKE_URL": str(tmp_path / "lake")})
    try:
        deadline = time.monotonic() + 90
        while not seen.exists():
            assert ui.poll() is None and time.monotonic() < deadline, "the UI's child never saw the sandbox"
            time.sleep(0.2)
        env = json.loads(seen.read_text())
        assert env["COINBASE_BASE_URL"].startswith("http://127.0.0.1:") and env["candles"] == 60
        assert env["COINAPI_KEY"] == "sandbox-coinapi-key" and env["BTC_PLATFORM_SOURCE"] == SANDBOX
        assert env["DAGSTER_HOME"] == str(home.resolve())
        ui.send_signal(signal.SIGTERM)
        ui.wait(timeout=30)
    finally:
        if ui.poll() is None:
            ui.kill()
    with pytest.raises(ProcessLookupError):
        os.kill(env["pid"], 0)  # dagster dev's stand-in is gone ...
    assert refused(env["COINBASE_BASE_URL"])  # ... and so is the sandbox


# -- the source where users look ---------------------------------------------------------------------

def test_ingest_metadata_run_tags_and_partitions_carry_the_source(run, instance, platform_env):
    assert platform_env[SOURCE_ENV] == SANDBOX  # vendor_env says which sandbox it is
    lake = Lake(platform_env["BTC_PLATFORM_LAKE_URL"])
    result = run(["coinbase_candles_1m"], multi_key(DAY, "BTC-USD"))
    [event] = result.get_asset_materialization_events()
    assert event.materialization.metadata["source"].value == SANDBOX
    assert instance.get_run_by_id(result.run_id).tags[SOURCE_TAG] == SANDBOX
    assert partition_origin(lake, candles_ref(DAY, "BTC-USD")) == SANDBOX
    assert lake_source(lake)["sources"] == [SANDBOX]

    days = run(["fear_greed_index"], tags=range_tags(DAY, DAY + timedelta(days=1)))  # one run, two partitions
    events = days.get_asset_materialization_events()
    assert len(events) == 2 and {e.materialization.metadata["source"].value for e in events} == {SANDBOX}
    assert instance.get_run_by_id(days.run_id).tags[SOURCE_TAG] == SANDBOX
    assert {partition_origin(lake, fear_greed_ref(d)) for d in (DAY, DAY + timedelta(days=1))} == {SANDBOX}


def test_the_lake_refuses_another_source_unless_mixing_is_asked(instance, platform_env, monkeypatch):
    lake = Lake(platform_env["BTC_PLATFORM_LAKE_URL"])
    graph_runner(instance)(["fear_greed_index"], DAY.isoformat())
    later = DAY + timedelta(days=1)

    monkeypatch.setenv(SOURCE_ENV, "live")
    result = graph_runner(instance)(["fear_greed_index"], later.isoformat(), raise_on_error=False)
    assert not result.success
    [(_, _, message)] = step_failures(result)
    assert "holds data from sandbox(seed=7); this process uses live" in message and "nothing written" in message
    assert not lake.exists(fear_greed_ref(later))

    monkeypatch.setenv(ALLOW_MIXED_SOURCES_ENV, "1")
    graph_runner(instance)(["fear_greed_index"], later.isoformat())
    assert partition_origin(lake, fear_greed_ref(later)) == "live"
    assert partition_origin(lake, fear_greed_ref(DAY)) == SANDBOX
    assert lake_source(lake)["sources"] == [SANDBOX, "live"] and lake_source(lake)["mixed"] is True


def test_a_dataset_over_partitions_of_mixed_origin_fails_its_blocking_check(run, platform_env):
    table = training_table(days=24, seed=4)
    write_table(platform_env["BTC_PLATFORM_DUCKDB_PATH"], table)
    lake = Lake(platform_env["BTC_PLATFORM_LAKE_URL"])
    claim_lake(lake, SANDBOX)
    claim_lake(lake, "live", allow_mixed=True)
    days = sorted(pd.to_datetime(table["ts"], utc=True).dt.date.unique())
    row = pd.DataFrame({"ts": [pd.Timestamp("2024-02-01", tz="UTC")], "close": [1.0]})
    for day in days[:3]:  # BTC from the sandbox, ETH's first days live
        lake.write(candles_ref(day, "BTC-USD"), with_origin(row.copy(), SANDBOX))
        lake.write(candles_ref(day, "ETH-USD"), with_origin(row.copy(), "live"))

    result = run(["training_splits_1h"], raise_on_error=False)
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["single_origin"].passed is False and checks["single_origin"].blocking is True
    details = checks["single_origin"].metadata["details"].value
    assert details["origins"] == {"live": 3, SANDBOX: 3}
    assert details["message"].startswith("partitions of mixed origin, refused: ")
    assert f"live (3 partitions, e.g. coinbase_candles/ETH-USD/1m/{days[0]:%Y-%m-%d}" in details["message"]
    assert f"sandbox(seed=7) (3 partitions, e.g. coinbase_candles/BTC-USD/1m/{days[0]:%Y-%m-%d}" in details["message"]
    assert all(c.passed for name, c in checks.items() if name != "single_origin")  # refused for its origin alone


def test_one_port_is_free_for_the_sandbox_setting(tmp_path):
    # BTC_PLATFORM_SANDBOX_PORT fixes the sandbox's port (a bookmark for the vendor URLs); unset: any free one.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    plan = build_plan([], {"BTC_PLATFORM_SANDBOX_PORT": str(port)}, tmp_path)
    with sandbox_process(plan.sandbox_argv) as url:
        assert url == f"http://127.0.0.1:{port}"
