"""Rate limits hold across processes: every vendor's ingest steps share one Dagster pool, and the
production instance lets one step per pool run at a time (each client paces at the whole limit)."""

import re
import warnings
from pathlib import Path

import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config

from btc_platform_tests.unit.test_deploy_config import DEPLOY, PROD_ENV

ROOT = Path(__file__).resolve().parents[2]
VENDOR_ASSETS = {
    "coinbase": ["coinbase_candles_1m"],
    "coinapi": ["coinapi_spot_ohlcv_1h", "coinapi_perp_ohlcv_1h", "coinapi_funding_rates"],
    "cryptoquant": ["cryptoquant_onchain_metrics"],
    "fred": ["fred_vintages"],
    "alphavantage": ["alphavantage_daily"],
    "feargreed": ["fear_greed_index"],
}


@pytest.fixture(scope="module")
def defs():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from btc_platform.definitions import defs
    return defs


def test_each_vendor_ingest_asset_is_in_its_vendor_pool(defs):
    for vendor, keys in VENDOR_ASSETS.items():
        for key in keys:
            assets_def = defs.resolve_assets_def(key)
            assert assets_def.op.pool == f"vendor_{vendor}", key


def test_every_ingest_asset_that_calls_a_vendor_has_a_pool(defs):
    """A new vendor asset in the ingest group without a pool would run unbounded across pods."""
    ingest = [a for a in defs.resolve_all_asset_specs() if a.group_name == "ingest"]
    named = {k for keys in VENDOR_ASSETS.values() for k in keys}
    assert {s.key.to_user_string() for s in ingest} >= named
    for spec in ingest:
        pool = defs.resolve_assets_def(spec.key).op.pool
        assert pool is not None and pool.startswith("vendor_"), spec.key


def test_production_instance_bounds_each_vendor_pool_to_one_step(monkeypatch):
    for name, value in PROD_ENV.items():
        monkeypatch.setenv(name, value)
    config, _ = dagster_instance_config(str(DEPLOY))
    assert config["concurrency"]["pools"] == {"default_limit": 1, "granularity": "op"}
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    assert values["concurrency"]["pools"] == {"defaultLimit": 1, "granularity": "op"}


def test_readme_table_names_every_pool_and_its_limit():
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| [^|]+ \| `(vendor_\w+)` \| (\d+) \|", readme, flags=re.M))
    assert rows == {f"vendor_{v}": "1" for v in VENDOR_ASSETS}
