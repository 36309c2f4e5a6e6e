"""The vendor status store: endpoint status transitions and degraded partitions, in the lake."""

import pytest

from btc_platform.lake import Lake
from btc_platform.vendor_status import VendorStatusStore


@pytest.fixture
def store(tmp_path):
    return VendorStatusStore(Lake(str(tmp_path)))


def test_status_keeps_last_success_through_a_failure(store):
    store.record("coinapi", "funding_rate", "ok")
    ok = store.get("coinapi", "funding_rate")
    failed = store.record("coinapi", "funding_rate", "not_entitled", "coinapi /v1/metrics: HTTP 404 not in plan")
    assert failed.status == "not_entitled" and failed.last_success == ok.last_success
    assert failed.last_failure_message == "coinapi /v1/metrics: HTTP 404 not in plan"
    back = store.record("coinapi", "funding_rate", "ok")
    assert back.status == "ok" and back.last_failure_status == "not_entitled"  # the history stays
    assert [(s.vendor, s.endpoint, s.status) for s in store.all()] == [("coinapi", "funding_rate", "ok")]


def test_unknown_status_is_refused(store):
    with pytest.raises(ValueError, match="unknown vendor status 'down'"):
        store.record("fred", "observations", "down")


def test_degraded_partitions_are_listed_and_cleared(store):
    store.mark_degraded("coinapi_funding_rates", "2024-01-02|BTC-USD", "coinapi", "funding_rate", "skipped", "404")
    store.mark_degraded("cryptoquant_onchain_metrics", "2024-01-02", "cryptoquant", "exchange_flows_hour",
                        "fallback", "daily served")
    assert {(d.asset, d.partition, d.how) for d in store.degraded()} == {
        ("coinapi_funding_rates", "2024-01-02|BTC-USD", "skipped"),
        ("cryptoquant_onchain_metrics", "2024-01-02", "fallback"),
    }
    store.clear_degraded("coinapi_funding_rates", "2024-01-02|BTC-USD")
    assert [d.asset for d in store.degraded()] == ["cryptoquant_onchain_metrics"]
    with pytest.raises(ValueError):
        store.mark_degraded("a", "p", "v", "e", "lost", "why")
