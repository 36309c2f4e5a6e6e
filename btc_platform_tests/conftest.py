"""Fixtures shared by every test layer: the vendor sandbox and an isolated platform environment."""

from pathlib import Path

import pytest

from btc_platform.sandbox import SandboxServer

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


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


@pytest.fixture
def platform_env(tmp_path, monkeypatch, clean_sandbox):
    """Every platform location in a temporary folder, vendors pointed at the sandbox."""
    env = {
        "BTC_PLATFORM_LAKE_URL": str(tmp_path / "lake"),
        "BTC_PLATFORM_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "BTC_PLATFORM_DATASETS_DIR": str(tmp_path / "datasets"),
        "BTC_PLATFORM_MODELS_DIR": str(tmp_path / "models"),
        "COINBASE_BASE_URL": clean_sandbox.coinbase_url(),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
