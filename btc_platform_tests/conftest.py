"""Fixtures shared by every test layer: the vendor sandbox and an isolated platform environment."""

import os
from pathlib import Path

import dagster as dg
import pytest

from btc_platform.sandbox import SandboxServer
from btc_platform.sandbox.registry import vendor_env

pytest_plugins = ["btc_platform_tests.fixtures.gcs_emulator", "btc_platform_tests.fixtures.bigquery_emulator"]

# Nothing downloads model weights in tests: the LLM trainers load a tiny model built locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# An instance in $DAGSTER_HOME is created once, before tests (or processes they start) open it in parallel.
if os.environ.get("DAGSTER_HOME"):
    from btc_platform.config import prepare_instance_home

    prepare_instance_home(Path(os.environ["DAGSTER_HOME"]))


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data; tests that need it skip with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available here: {path} (see DESIGN.md, Tests)")
    return path


@pytest.fixture(scope="session")
def sandbox():
    """One vendor sandbox for the session, with the vendors' real rate limits on."""
    with SandboxServer() as server:
        yield server


@pytest.fixture
def clean_sandbox(sandbox):
    sandbox.clear_faults()
    yield sandbox
    sandbox.clear_faults()
    for vendor in sandbox.vendors:
        sandbox.grant(vendor)


@pytest.fixture
def platform_env(tmp_path, monkeypatch, clean_sandbox):
    """Every platform location in a temporary folder, vendors pointed at the sandbox."""
    env = {
        "BTC_PLATFORM_LAKE_URL": str(tmp_path / "lake"),
        "BTC_PLATFORM_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "BTC_PLATFORM_DATASETS_DIR": str(tmp_path / "datasets"),
        "BTC_PLATFORM_MODELS_DIR": str(tmp_path / "models"),
        "BTC_PLATFORM_MLFLOW_DIR": str(tmp_path / "mlflow"),
        **vendor_env(clean_sandbox),
    }
    # Alpha Vantage's free-plan pace (5 a minute, 25 a day per key) is tested in its unit tests;
    # here it would only make every run wait, and the session's runs share one sandbox key.
    twin = clean_sandbox.vendors["alphavantage"]
    twin.configure(per_minute=None, per_day=None)
    env["ALPHAVANTAGE_REQUESTS_PER_MINUTE"] = "600"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield env
    twin.configure(per_minute=5, per_day=25)


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def graph_runner(instance):
    """Materialize selections of the real definitions in `instance`, with resources built from the
    environment as it is now (set it first: platform_env, gcs_env)."""
    from btc_platform.definitions import defs
    from btc_platform.demo import materialize_selection
    from btc_platform.defs.resources import build_resources

    resources = build_resources()

    def _run(selection, partition_key=None, **kwargs):
        return materialize_selection(defs, instance, resources, selection, partition_key, **kwargs)

    return _run


def run_benchmark(script: Path, args: list[str], cwd: Path) -> tuple[dict, str]:
    """Run a benchmark script; check it exits 0 and ends with one `BENCH_JSON {...}` line; return
    that line's figures and everything it printed."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH_JSON ")]
    assert len(lines) == 1, done.stdout
    assert done.stdout.rstrip().splitlines()[-1] == lines[0]
    return json.loads(lines[0].removeprefix("BENCH_JSON ")), done.stdout
