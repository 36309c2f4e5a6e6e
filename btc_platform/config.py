"""Platform settings read from environment variables, with defaults that need no cloud account.

Domain code receives these values as arguments; only the Dagster resources and the command-line
entry points read the environment (through this module), so tests can pass their own.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

# Vendors' real hosts: used unless a sandbox (or proxy) URL is configured.
DEFAULT_BASE_URLS = {
    "coinbase": "https://api.exchange.coinbase.com",
    "coinapi": "https://rest.coinapi.io",
    "cryptoquant": "https://api.cryptoquant.com",
    "fred": "https://api.stlouisfed.org",
    "alphavantage": "https://www.alphavantage.co",
    "feargreed": "https://api.alternative.me",
}

# e.g. COINAPI_BASE_URL: where the demo and the tests point a vendor at the sandbox.
BASE_URL_ENV = {vendor: f"{vendor.upper()}_BASE_URL" for vendor in DEFAULT_BASE_URLS}

# Which vendor source this process uses (`sandbox(seed=7)`, `replay:...`, `live`: btc_platform.sources),
# and whether it may write into an instance or lake recorded for another (off unless asked).
SOURCE_ENV = "BTC_PLATFORM_SOURCE"
ALLOW_MIXED_SOURCES_ENV = "BTC_PLATFORM_ALLOW_MIXED_SOURCES"
# `make ui LIVE=1`: live vendors get their own instance and lake by default, under this folder.
LIVE_DATA_DIR = "data/live"

# The vendors' credentials (names from the user's own deployment); unset means the vendor is skipped.
KEY_ENV = {
    "coinapi": "COINAPI_KEY",
    "cryptoquant": "CQ_TOKEN",
    "fred": "FRED_API_KEY",
    "alphavantage": "ALPHA_VANTAGE_API_KEY",
}


# Every numeric variable the platform reads, with its default and smallest sane value.
NUMERIC_ENV = {
    "ALPHAVANTAGE_REQUESTS_PER_DAY": (25, 1),  # the plan's daily budget (free plan: 25)
    "ALPHAVANTAGE_REQUESTS_PER_MINUTE": (5, 1),  # the plan's pace (free plan: 5)
    "BTC_PLATFORM_TRAINING_GPUS": (None, 0),  # GPUs per training pod; unset: the launcher's default
}


def env_int(name: str, env: dict[str, str] | None = None) -> int | None:
    """`name` as a whole number (its NUMERIC_ENV default when unset or empty); a bad value fails naming
    the variable and the value, rather than as a bare int() error deep inside a run."""
    env = os.environ if env is None else env
    default, minimum = NUMERIC_ENV[name]
    text = (env.get(name) or "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name}={env[name]!r}: expected a whole number") from None
    if value < minimum:
        raise ValueError(f"{name}={env[name]!r}: expected a whole number >= {minimum}")
    return value


def check_numeric_env(env: dict[str, str] | None = None) -> None:
    """Fail up front on any bad numeric variable (entry points call this before starting work)."""
    for name in NUMERIC_ENV:
        env_int(name, env)


@dataclass(frozen=True)
class Settings:
    lake_url: str = "./data/lake"
    duckdb_path: str = "./data/warehouse.duckdb"
    warehouse: str = "duckdb"  # BTC_PLATFORM_WAREHOUSE: duckdb | bigquery (BTC_PLATFORM_BQ_* configure it)
    datasets_dir: str = "./data/datasets"
    models_dir: str = "./data/models"
    base_urls: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_BASE_URLS))

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        base_urls = {
            vendor: env.get(var) or DEFAULT_BASE_URLS[vendor] for vendor, var in BASE_URL_ENV.items()
        }
        return cls(
            lake_url=env.get("BTC_PLATFORM_LAKE_URL", cls.lake_url),
            duckdb_path=env.get("BTC_PLATFORM_DUCKDB_PATH", cls.duckdb_path),
            warehouse=env.get("BTC_PLATFORM_WAREHOUSE", cls.warehouse),
            datasets_dir=env.get("BTC_PLATFORM_DATASETS_DIR", cls.datasets_dir),
            models_dir=env.get("BTC_PLATFORM_MODELS_DIR", cls.models_dir),
            base_urls=base_urls,
        )


def project_root() -> Path:
    return Path(__file__).resolve().parent.parent


# The local instance's dagster.yaml. Run monitoring: the daemon (`make ui`) fails runs whose process
# died (a killed demo, a crashed run worker) instead of leaving them STARTED forever. The local launcher
# cannot see a dead worker, so such a run is failed once it outlives max_runtime_seconds (4 h: far past
# a year-long backfill chunk; a run tagged dagster/max_runtime sets its own).
LOCAL_INSTANCE_CONFIG = """\
telemetry:
  enabled: false
"""
RUN_MONITORING_CONFIG = """\
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  max_runtime_seconds: 14400
  poll_interval_seconds: 60
"""
_INITIALISED = ".initialised"


def prepare_instance_home(home: Path) -> None:
    """The embedded Dagster instance's folder, ready before anything uses it in parallel.

    A new folder gets a dagster.yaml (no telemetry notice, run monitoring on); an existing one without
    run monitoring gets it added. The instance's databases are created once, under a file lock: two
    processes creating them at once leave two alembic heads, and every later process fails."""
    import fcntl

    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if (home / _INITIALISED).exists() and config.exists() and re.search(r"^run_monitoring:", config.read_text(), re.M):
        return
    with open(home / ".init.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not config.exists():
            config.write_text(LOCAL_INSTANCE_CONFIG + RUN_MONITORING_CONFIG)
        elif not re.search(r"^run_monitoring:", config.read_text(), re.M):
            config.write_text(config.read_text().rstrip("\n") + "\n" + RUN_MONITORING_CONFIG)
        if not (home / _INITIALISED).exists():
            import dagster as dg

            with dg.DagsterInstance.from_config(str(home)) as instance:
                instance.get_runs(limit=1)  # creates and stamps the run, event log and schedule databases
                instance.all_instigator_state()
            (home / _INITIALISED).write_text("")


if __name__ == "__main__":
    # `python -m btc_platform.config`: prepare $DAGSTER_HOME (the Makefile's setup, before any command).
    prepare_instance_home(Path(os.environ.get("DAGSTER_HOME") or "data/dagster_home").resolve())
