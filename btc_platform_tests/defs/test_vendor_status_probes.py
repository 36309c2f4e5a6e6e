"""The restoration sensor probes exactly what was refused, and Coinbase is in the vendor status like the
other vendors."""

import socket
from datetime import date

import dagster as dg
import pytest

from btc_platform.defs.partitions import multi_key
from btc_platform.lake import Lake
from btc_platform.vendor_status import VendorStatusStore
from btc_platform.vendors import coinbase
from btc_platform_tests.conftest import graph_runner
from btc_platform_tests.defs.test_vendor_restoration import requested, tick

DAY = date(2024, 3, 4)
KEY = multi_key(DAY, "BTC-USD")
PERP = "BINANCEFTS_PERP_BTC_USDT"


@pytest.fixture
def status(platform_env):
    return VendorStatusStore(Lake(platform_env["BTC_PLATFORM_LAKE_URL"]))


def coinapi_paths(sandbox) -> list[str]:
    return [e["path"] for e in sandbox.request_log if e["vendor"] == "coinapi"]


def test_a_denied_perpetual_is_probed_on_its_own_symbol_and_rerun_only_once_granted(run, instance, clean_sandbox,
                                                                                  status):
    clean_sandbox.deny("coinapi", r"/v1/ohlcv/BINANCEFTS_PERP", "not_entitled")
    result = run(["coinapi_perp_ohlcv_1h"], KEY)
    assert result.success and not result.get_asset_materialization_events()  # skipped, recorded
    assert [(d.asset, d.partition) for d in status.degraded()] == [("coinapi_perp_ohlcv_1h", str(KEY))]

    for _ in range(2):  # spot answers all along; the perpetual does not: no re-run, tick after tick
        clean_sandbox.clear_request_log()
        still = tick(instance)
        assert isinstance(still, dg.SkipReason) and "none answers again" in still.skip_message
        paths = coinapi_paths(clean_sandbox)
        assert paths and all(PERP in p for p in paths), paths
        assert status.get("coinapi", "ohlcv_history").status == "no_access"  # CoinAPI answers 403

    clean_sandbox.grant("coinapi")
    assert requested(tick(instance)) == {("coinapi_perp_ohlcv_1h", str(KEY))}
    assert status.get("coinapi", "ohlcv_history").status == "ok"


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/coinbase"  # nothing listens there once the socket is closed


def test_coinbase_connection_failures_show_in_vendor_status_and_are_probed(instance, platform_env, monkeypatch,
                                                                          status):
    make_http = coinbase.make_http  # one attempt a request: the retry budget is tested elsewhere
    monkeypatch.setattr(coinbase, "make_http", lambda base_url, **kw: make_http(base_url, **{"max_attempts": 1, **kw}))
    monkeypatch.setenv("COINBASE_BASE_URL", closed_port_url())
    failed = graph_runner(instance)(["coinbase_candles_1m"], KEY, raise_on_error=False)
    assert not failed.success
    down = status.get("coinbase", "candles")
    assert down.status == "failing" and "connection error" in down.last_failure_message

    shown = graph_runner(instance)(["vendor_status"])
    [event] = shown.get_asset_materialization_events()
    meta = event.materialization.metadata
    assert "coinbase candles: failing" in meta["not_ok"].value
    assert any(r.data["vendor"] == "coinbase" for r in meta["endpoints"].value.records)

    still = tick(instance)
    assert isinstance(still, dg.SkipReason) and "none answers again" in still.skip_message
    assert status.get("coinbase", "candles").status == "failing"

    monkeypatch.setenv("COINBASE_BASE_URL", platform_env["COINBASE_BASE_URL"])  # Coinbase answers again
    tick(instance)
    assert status.get("coinbase", "candles").status == "ok"
