"""The Dagster webserver starts on the code location and serves the asset graph over GraphQL."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
QUERY = "{ assetNodes { assetKey { path } groupName isPartitioned } }"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def webserver(tmp_path):
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml",
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            try:
                if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"webserver did not come up:\n{proc.stdout.read().decode()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_graphql_serves_every_group_of_the_asset_graph(webserver):
    # The code location loads in its own process: poll until it has reported its assets.
    deadline = time.monotonic() + 120
    while True:
        body = httpx.post(f"{webserver}/graphql", json={"query": QUERY}, timeout=30).json()
        nodes = body.get("data", {}).get("assetNodes") or []
        if nodes or time.monotonic() > deadline:
            break
        time.sleep(1)
    groups = {n["groupName"] for n in nodes}
    assert groups == {"ingest", "processed", "monitoring", "warehouse", "datasets", "training", "evaluation"}
    by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}
    assert by_key["coinbase_candles_1m"]["isPartitioned"] is True
    assert by_key["xgboost_baseline_1h"]["groupName"] == "training"
    assert by_key["model_champion_1h"]["groupName"] == "evaluation"
