"""The browser lane (`make test-ui`): the real UI, started the way `make ui` starts it, in headless Chromium.

`ui` starts `python -m btc_platform.ui` (dagster dev + daemon + the vendor sandbox as its child) on a
temporary instance, lake and warehouse and free ports; `page` is Debian's /usr/bin/chromium driven by
Playwright (no browser download). Screenshots and the UI's log go to test-artifacts/ui/ (or
$BTC_PLATFORM_UI_ARTIFACTS), which CI keeps and git ignores.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("BTC_PLATFORM_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("BTC_PLATFORM_UI_ARTIFACTS") or ROOT / "test-artifacts" / "ui")
# STACK.md's flags for headless Chromium on these machines (no GPU, small /dev/shm, no phoning home).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
START_TIMEOUT_S = 240  # dagster dev, its daemon and the code location on 2 busy cores
TERMINAL_RUN = {"SUCCESS", "FAILURE", "CANCELED"}
TERMINAL_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class UI:
    url: str
    sandbox_url: str
    env: dict[str, str]  # the platform locations the UI's runs write to
    log_path: Path

    def graphql(self, query: str, **variables) -> dict:
        body = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=60).json()
        assert not body.get("errors"), f"GraphQL errors: {body['errors']}"
        return body["data"]

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def wait_for_run(self, run_id: str, timeout: float = 300) -> dict:
        """The run once it has ended (status, tags); fails naming the run when it does not end in time."""
        query = "query($id: ID!) { runOrError(runId: $id) { ... on Run { runId status tags { key value } } } }"
        deadline = time.monotonic() + timeout
        while True:
            run = self.graphql(query, id=run_id)["runOrError"]
            if run.get("status") in TERMINAL_RUN:
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} still {run.get('status')} after {timeout:.0f} s; UI log:\n"
                                     + self.log_tail())
            time.sleep(1)

    def wait_for_backfill(self, backfill_id: str, timeout: float = 420) -> dict:
        """The backfill once it has ended, with its runs (id, status)."""
        query = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
            ... on PartitionBackfill { status runs(limit: 100) { runId status } } } }"""
        deadline = time.monotonic() + timeout
        while True:
            backfill = self.graphql(query, id=backfill_id)["partitionBackfillOrError"]
            if backfill.get("status") in TERMINAL_BACKFILL and all(r["status"] in TERMINAL_RUN for r in backfill["runs"]):
                return backfill
            if time.monotonic() > deadline:
                raise AssertionError(f"backfill {backfill_id} still {backfill.get('status')} after {timeout:.0f} s "
                                     f"(runs {backfill.get('runs')}); UI log:\n" + self.log_tail())
            time.sleep(1)


def _wait_until_up(proc: subprocess.Popen, url: str, log_path: Path) -> None:
    """The webserver answers and the code location has reported its assets (it loads in its own process)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            body = httpx.post(f"{url}/graphql", json={"query": "{ assetNodes { id } }"}, timeout=10).json()
            if (body.get("data") or {}).get("assetNodes"):
                return
        except (httpx.TransportError, ValueError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            state = f"exited with {proc.returncode}" if proc.poll() is not None else f"not up in {START_TIMEOUT_S} s"
            raise AssertionError(f"make ui's process {state}; its log ({log_path}):\n"
                                 + log_path.read_text(errors="replace")[-4000:])
        time.sleep(1)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # no stale screenshot from an earlier run
    ARTIFACTS.mkdir(parents=True)
    (ARTIFACTS.parent / ".gitignore").write_text("*\n")  # kept by CI, never committed
    return ARTIFACTS


@pytest.fixture(scope="session")
def ui(tmp_path_factory, artifacts):
    base = tmp_path_factory.mktemp("ui")
    home = base / "dagster_home"
    home.mkdir()
    port, sandbox_port = free_port(), free_port()
    platform = {
        "BTC_PLATFORM_LAKE_URL": str(base / "lake"),
        "BTC_PLATFORM_DUCKDB_PATH": str(base / "warehouse.duckdb"),
        "BTC_PLATFORM_DATASETS_DIR": str(base / "datasets"),
        "BTC_PLATFORM_MODELS_DIR": str(base / "models"),
        "BTC_PLATFORM_MLFLOW_DIR": str(base / "mlflow"),
    }
    env = {**os.environ, **platform, "DAGSTER_HOME": str(home), "BTC_PLATFORM_SANDBOX_PORT": str(sandbox_port)}
    for name in ("BTC_PLATFORM_LIVE", "BTC_PLATFORM_ALLOW_MIXED_SOURCES"):  # the sandbox, unmixed, whatever the shell says
        env.pop(name, None)
    log_path = artifacts / "ui.log"
    with open(log_path, "wb") as log:
        # As `make ui` runs it; its own SIGTERM handler stops dagster dev, then the sandbox.
        proc = subprocess.Popen([sys.executable, "-m", "btc_platform.ui", "-h", "127.0.0.1", "-p", str(port)],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(proc, url, log_path)
        handle = UI(url=url, sandbox_url=f"http://127.0.0.1:{sandbox_port}", env=platform, log_path=log_path)
        assert httpx.get(f"{handle.sandbox_url}/_sandbox/health", timeout=10).json()["ok"], "the UI's sandbox is down"
        # The "Join the community" pop-up covers localhost pages until this is sent (STACK.md).
        handle.graphql("mutation { setNuxSeen }")
        yield handle
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make test-ui` installs Debian's (make browser)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, ui):
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, base_url=ui.url)
    context.set_default_timeout(60_000)  # a cold page on 2 busy cores
    tab = context.new_page()
    yield tab
    context.close()
