"""CoinAPI: the client against recorded real responses and against the sandbox twin.

Contract tests parse the recorded cassettes (and the spec's example where nothing was recorded) with
the same code that parses the twin, and compare the schemas; then the twin is driven through the
client: paging, auth, entitlements, 550, the credit quota headers, faults, redaction.
"""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pandas as pd
import pytest

from btc_platform.sandbox import FaultRule, SandboxServer
from btc_platform.sandbox.market import GeneratedMarket
from btc_platform.sandbox.registry import SANDBOX_KEYS
from btc_platform.vendors import coinapi
from btc_platform.vendors.errors import (
    BadRequestError,
    MalformedPayloadError,
    NoAccessError,
    NoCredentialsError,
    NotEntitledError,
    RateLimitedError,
    TransientError,
)
from btc_platform_tests.conftest import shared_data

KEY = SANDBOX_KEYS["coinapi"]
DAY = datetime(2024, 1, 2, tzinfo=timezone.utc)
INGESTED = datetime(2025, 1, 1, tzinfo=timezone.utc)
SPOT, PERP = coinapi.SPOT_SYMBOLS["BTC-USD"], coinapi.PERP_SYMBOLS["BTC-USDT-PERP"]
TIME7 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$")
PARTITION = "2024-01-02|BTC-USD"


# -- helpers -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server():
    """A sandbox of our own: these tests switch entitlements and quotas."""
    with SandboxServer() as s:
        assert "coinapi" in s.vendors, "the CoinAPI twin is registered in sandbox/registry.py"
        yield s


@pytest.fixture
def sandbox(server):
    twin = server.vendors["coinapi"]
    server.clear_faults()
    server.grant("coinapi")
    twin.set_quota(1_000_000, 86_400.0, send_reset=False)
    yield server
    server.clear_faults()
    server.grant("coinapi")
    twin.set_quota(1_000_000, 86_400.0, send_reset=False)


def http_for(server, key=KEY, **kw):
    kw.setdefault("backoff_initial_s", 0.01)
    kw.setdefault("backoff_max_s", 0.05)
    return coinapi.make_http(server.vendor_url("coinapi"), key, **kw)


def ohlcv(http, symbol_id=SPOT, start=DAY, days=1, **kw):
    kw.setdefault("partition", PARTITION)
    return coinapi.fetch_ohlcv(http, symbol_id, start, start + timedelta(days=days), ingested_at=INGESTED, **kw)


def funding(http, symbol_id=PERP, start=DAY, days=1, **kw):
    kw.setdefault("partition", "2024-01-02|BTC-USDT-PERP")
    return coinapi.fetch_funding_rates(http, symbol_id, start, start + timedelta(days=days), ingested_at=INGESTED,
                                       **kw)


def cassette(name: str) -> dict:
    """The first interaction of a vcrpy cassette (both of its on-disk layouts)."""
    yaml = pytest.importorskip("yaml")
    data = yaml.safe_load(shared_data("fixtures", "coinapi", name).read_text())
    interaction = data["interactions"][0]
    resp = interaction["response"]
    body = resp.get("content")
    if body is None:
        body = (resp.get("body") or {}).get("string") or ""
    status = resp.get("status_code") or resp["status"]["code"]
    headers = {k: v[0] for k, v in (resp.get("headers") or {}).items()
               if k.lower() not in ("transfer-encoding", "content-length")}
    return {"uri": interaction["request"]["uri"], "status": status, "headers": headers, "body": body}


def replaying(recorded: dict, seen: list | None = None, once: bool = False, **kw) -> coinapi.CoinAPIHTTP:
    """A client whose transport answers every request with the recorded response (`once`: the first
    request only, later ones get an empty page, as the vendor answers past the rows it has)."""
    asked = []

    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        asked.append(request)
        body = "[]" if once and len(asked) > 1 else recorded["body"]
        return httpx.Response(recorded["status"], headers=recorded["headers"], content=body.encode())

    kw.setdefault("backoff_initial_s", 0.01)
    kw.setdefault("backoff_max_s", 0.02)
    return coinapi.make_http("https://rest.coinapi.io", "recorded-key", transport=httpx.MockTransport(handler), **kw)


def schema(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return [(c, str(t)) for c, t in frame.dtypes.items()]


# -- contract: recorded responses vs the twin --------------------------------------------------
def test_contract_ohlcv_history_recorded_and_twin_parse_to_one_schema(sandbox):
    rec = cassette("ljnsn_test_ohlcv__test_get_v1_ohlcv_symbol_id_history.yaml")
    query = {k: v[0] for k, v in parse_qs(urlsplit(rec["uri"]).query).items()}
    start, end = (datetime.fromisoformat(query[k]).replace(tzinfo=timezone.utc) for k in ("time_start", "time_end"))
    seen: list[httpx.Request] = []
    with replaying(rec, seen) as http:
        real = coinapi.fetch_ohlcv(http, "KRAKEN_SPOT_BTC_USD", start, end, period_id=query["period_id"],
                                   symbol="BTC-USD", ingested_at=INGESTED)
        # the client asks what the recorded request asked, with the key in the vendor's header
        sent = seen[0]
        assert sent.url.path == urlsplit(rec["uri"]).path
        assert {k: sent.url.params[k] for k in ("period_id", "time_start", "time_end")} == \
            {k: query[k] for k in ("period_id", "time_start", "time_end")}
        assert sent.headers["X-CoinAPI-Key"] == "recorded-key"
        assert http.rate_limit.limit == 100 and http.rate_limit.request_cost == 1
    assert len(real.frame) == 4 and real.pages == 1 and not real.no_data
    assert real.frame["ts"].iloc[0] == pd.Timestamp("2021-01-01", tz="UTC")
    assert real.frame["close"].iloc[0] == 29398.9 and real.frame["trades_count"].iloc[0] == 33361

    twin_start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    with http_for(sandbox) as http:
        twin = coinapi.fetch_ohlcv(http, SPOT, twin_start, twin_start + (end - start), period_id=query["period_id"],
                                   ingested_at=INGESTED)
        raw = http.get_json(f"/v1/ohlcv/{SPOT}/history", {"period_id": query["period_id"], "limit": 4,
                                                          "time_start": "2024-01-01T00:00:00"}, endpoint="raw")
    assert schema(twin.frame) == schema(real.frame) and len(twin.frame) == 4
    assert list(twin.frame.columns) == coinapi.OHLCV_COLUMNS
    # the raw items: same fields in the same order, same time format and JSON types
    recorded_items = json.loads(rec["body"])
    assert [list(i) for i in raw] == [list(i) for i in recorded_items]
    for item in raw + recorded_items:
        assert all(TIME7.match(item[f]) for f in ("time_period_start", "time_period_end", "time_open", "time_close"))
        assert isinstance(item["trades_count"], int) and isinstance(item["price_open"], (int, float))


def test_contract_funding_metrics_spec_example_and_twin_parse_to_one_schema(sandbox):
    yaml = pytest.importorskip("yaml")
    listing = json.loads(cassette("ljnsn_test_metrics__test_get_v1_metrics.yaml")["body"])
    assert {"metric_id": coinapi.FUNDING_METRIC_ID} in listing  # the metric id is a real one
    spec = yaml.load(shared_data("vendor_specs", "coinapi-marketdata-rest.yaml").read_text(),
                     Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    op = spec["paths"][coinapi.FUNDING_ENDPOINT]["get"]
    assert {p["name"] for p in op["parameters"]} >= {"metric_id", "symbol_id", "time_start", "time_end",
                                                       "period_id", "limit"}
    example = op["responses"]["200"]["content"]["application/json"]["examples"]["Example response"]["value"]
    recorded = {"status": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(example)}
    start = datetime(2023, 7, 3, 14, 29, 2, tzinfo=timezone.utc)
    with replaying(recorded) as http:
        real = coinapi.fetch_funding_rates(http, PERP, start, start + timedelta(seconds=3), period_id="1SEC",
                                           ingested_at=INGESTED)
    assert len(real.frame) == 3 and list(real.frame["funding_rate"]) == [row["last"] for row in example]

    with http_for(sandbox) as http:
        twin = funding(http, days=2)
        raw = http.get_json(coinapi.FUNDING_ENDPOINT, {"metric_id": coinapi.FUNDING_METRIC_ID, "symbol_id": PERP,
                                                       "period_id": "8HRS", "time_start": "2024-01-02", "limit": 2},
                            endpoint="raw")
    assert schema(twin.frame) == schema(real.frame)
    assert list(twin.frame.columns) == coinapi.FUNDING_COLUMNS
    assert [list(i) for i in raw] == [list(example[0])] * 2
    assert all(TIME7.match(i[f]) for i in raw for f in ("time_period_start", "time_period_end", "time_open",
                                                         "time_close"))


def test_recorded_400_error_body_and_empty_500_become_the_right_errors():
    rec = cassette("ljnsn_test_metrics__test_get_v1_metrics_exchange_history.yaml")
    assert rec["status"] == 400
    with replaying(rec) as http:
        with pytest.raises(BadRequestError) as err:
            http.get_json("/v1/metrics/exchange/history", {"metric_id": "LIQUIDATION_IS_MATCH"}, endpoint="metrics")
        assert http.requests_sent == 1  # a bad request is not retried
        assert http.rate_limit.limit == 100
    assert err.value.http_status == 400
    assert err.value.detail == "Metric: LIQUIDATION_IS_MATCH not found mapping for exchange: BINANCE"

    rec = cassette("ljnsn_test_metrics__test_get_v1_metrics_exchange_current.yaml")
    assert rec["status"] == 500 and rec["body"] == ""
    with replaying(rec, max_attempts=3) as http:
        with pytest.raises(TransientError) as err:
            http.get_json("/v1/metrics/exchange/current", {}, endpoint="metrics")
        assert http.requests_sent == 3  # retried within the budget
    assert err.value.http_status == 500 and err.value.detail == "(empty body)"


def test_recorded_rate_headers_are_read():
    rec = cassette("ljnsn_test_metrics__test_get_v1_metrics_asset_listing.yaml")
    with replaying(rec) as http:
        assert http.get_json("/v1/metrics/asset/listing", {}, endpoint="listing") == []
        st = http.rate_limit
    assert (st.limit, st.remaining, st.used, st.request_cost) == (100, 58, 42, 0)


def test_the_twins_400_is_worded_like_the_recorded_one(sandbox):
    with http_for(sandbox) as http, pytest.raises(BadRequestError, match="not found mapping for symbol: "
                                                                         "COINBASE_SPOT_BTC_USD"):
        funding(http, symbol_id=SPOT)


# -- page validation -----------------------------------------------------------------------------
def item(ts: str, **kw):
    start = pd.Timestamp(ts)
    row = {"time_period_start": f"{start:%Y-%m-%dT%H:%M:%S}.0000000Z",
           "time_period_end": f"{start + pd.Timedelta(hours=1):%Y-%m-%dT%H:%M:%S}.0000000Z",
           "time_open": f"{start:%Y-%m-%dT%H:%M:%S}.1230000Z", "time_close": f"{start:%Y-%m-%dT%H:%M:%S}.9990000Z",
           "price_open": 1.0, "price_high": 2.0, "price_low": 0.5, "price_close": 1.5, "volume_traded": 3.0,
           "trades_count": 7}
    row.update(kw)
    return row


@pytest.mark.parametrize(
    "payload, why",
    [
        ({"error": "oops"}, "expected a JSON array"),
        ([[1, 2, 3]], "rows must be JSON objects"),
        ([{"time_period_start": "2024-01-02T00:00:00.0000000Z"}], "lack field"),
        ([item("2024-01-02T00:00", time_period_start="yesterday")], "unparsable time_period_start"),
        ([item("2024-01-02T00:00", time_period_start=1704153600)], "must be ISO 8601 strings"),
        ([item("2024-01-01T23:00")], "outside the requested window"),
        ([item("2024-01-02T00:00", price_close="n/a")], "price_close holds non-numeric"),
        ([item("2024-01-02T00:00", trades_count=1.5)], "trades_count"),
        ([item("2024-01-02T00:00", time_period_start="2024-01-02T00:30:00.0000000Z")], "not aligned"),
        ([item("2024-01-02T00:00", time_period_end="2024-01-02T02:00:00.0000000Z")], "is not the requested"),
    ],
)
def test_malformed_pages_fail_naming_vendor_endpoint_and_partition(payload, why):
    with pytest.raises(MalformedPayloadError, match=why) as err:
        coinapi.parse_ohlcv(payload, period_id="1HRS", window=(DAY, DAY + timedelta(days=1)), partition=PARTITION)
    assert f"coinapi /v1/ohlcv/{{symbol_id}}/history (partition {PARTITION})" in str(err.value)


def test_repeated_and_shuffled_rows_collapse_but_conflicting_rows_fail():
    rows = [item("2024-01-02T02:00"), item("2024-01-02T00:00"), item("2024-01-02T01:00"), item("2024-01-02T00:00")]
    with replaying({"status": 200, "headers": {}, "body": json.dumps(rows)}, once=True) as http:
        got = ohlcv(http).frame
    assert list(got["ts"].dt.hour) == [0, 1, 2]
    rows.append(item("2024-01-02T01:00", price_close=9.0))
    with replaying({"status": 200, "headers": {}, "body": json.dumps(rows)}, once=True) as http:
        with pytest.raises(MalformedPayloadError, match="two different rows for 2024-01-02T01:00"):
            ohlcv(http)


def test_the_schemas_time_value_form_of_metrics_is_accepted_too():
    rows = [{"symbol_id": PERP, "time": "2024-01-02T08:00:00.1234567Z", "value": 0.0001},
            {"symbol_id": PERP, "time": "2024-01-02T00:00:00.0000000Z", "value": -0.00002}]
    with replaying({"status": 200, "headers": {}, "body": json.dumps(rows)}, once=True) as http:
        got = funding(http).frame
    assert list(got["funding_rate"]) == [-0.00002, 0.0001]
    assert got["ts"].iloc[1] == pd.Timestamp("2024-01-02T08:00:00.1234567Z")


def test_the_twin_is_deterministic_across_instances():
    from btc_platform.sandbox.coinapi import CoinAPI
    from btc_platform.sandbox.server import Request

    def answer(twin, path, **query):
        req = Request("GET", path, {k: [str(v)] for k, v in query.items()}, {"X-CoinAPI-Key": KEY}, "127.0.0.1")
        status, body, _ = twin.handle(req)
        return status, json.dumps(body)

    a, b = CoinAPI(GeneratedMarket(seed=7)), CoinAPI(GeneratedMarket(seed=7))
    for path, query in ((f"/v1/ohlcv/{PERP}/history", {"period_id": "4HRS", "time_start": "20240102",
                                                        "time_end": "20240104", "limit": 100}),
                        (coinapi.FUNDING_ENDPOINT, {"metric_id": coinapi.FUNDING_METRIC_ID, "symbol_id": PERP,
                                                    "period_id": "1DAY", "time_start": "2024-01-02T00:00:00",
                                                    "time_end": "2024-01-09T00:00:00"})):
        first = answer(a, path, **query)
        assert first[0] == 200 and first == answer(b, path, **query)
    assert answer(CoinAPI(GeneratedMarket(seed=8)), path, **query) != first


def test_period_ids():
    assert coinapi.period_seconds("1HRS") == 3600 and coinapi.period_seconds("8HRS") == 28_800
    assert coinapi.period_seconds("1DAY") == 86_400 and coinapi.period_seconds("5MIN") == 300
    with pytest.raises(ValueError, match="fixed-length"):
        coinapi.period_seconds("1MTH")


# -- the twin through the client -------------------------------------------------------------------
def test_hourly_bars_aggregate_the_sandbox_market(sandbox):
    with http_for(sandbox) as http:
        got = ohlcv(http).frame
    minutes = GeneratedMarket(seed=7).minutes("BTC-USD", pd.Timestamp(DAY), pd.Timestamp(DAY + timedelta(days=1)))
    hourly = minutes.set_index("ts").resample("1h").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    assert len(got) == 24 and list(got["ts"]) == list(hourly.index)
    for col in ("open", "high", "low", "close"):
        np.testing.assert_allclose(got[col], hourly[col], rtol=1e-12)
    np.testing.assert_allclose(got["volume"], hourly["volume"], atol=1e-7)
    assert (got["trades_count"] > 0).all() and set(got["symbol"]) == {"BTC-USD"}
    assert set(got["source"]) == {"coinapi"} and set(got["symbol_id"]) == {SPOT}


def test_small_pages_give_the_same_frame_as_one_page(sandbox):
    with http_for(sandbox) as http:
        one = ohlcv(http, days=3)
        paged = ohlcv(http, days=3, page_limit=10)
        funding_one = funding(http, days=5)
        funding_paged = funding(http, days=5, page_limit=4)
    assert (one.pages, paged.pages) == (1, 8)  # 72 bars: seven full pages of 10, then 2
    assert paged.frame.equals(one.frame) and len(one.frame) == 72
    assert (funding_one.pages, funding_paged.pages) == (1, 4)
    assert funding_paged.frame.equals(funding_one.frame) and len(funding_one.frame) == 15


def test_perp_tracks_spot_and_funding_is_8_hourly_and_small(sandbox):
    with http_for(sandbox) as http:
        spot = ohlcv(http).frame
        perp = ohlcv(http, PERP).frame
        rates = funding(http, days=30).frame
    ratio = perp["close"].to_numpy() / spot["close"].to_numpy() - 1
    assert np.abs(ratio).max() < 0.005 and np.abs(ratio).max() > 0
    assert set(perp["symbol"]) == {"BTC-USDT-PERP"}
    assert len(rates) == 90 and set(rates["ts"].dt.hour) == {0, 8, 16}
    assert (rates["ts"].diff().dropna() == pd.Timedelta(hours=8)).all()
    assert rates["funding_rate"].abs().max() < 1e-3 and 0 < rates["funding_rate"].mean() < 3e-4
    assert rates["funding_rate"].nunique() > 30


def test_no_data_550_is_an_empty_frame_flagged_no_data(sandbox):
    before_listing = datetime(2020, 1, 1, tzinfo=timezone.utc)
    with http_for(sandbox) as http:
        full = ohlcv(http)
        empty = ohlcv(http, coinapi.SPOT_SYMBOLS["SOL-USD"], before_listing, partition="2020-01-01|SOL-USD")
        straddling = ohlcv(http, coinapi.SPOT_SYMBOLS["SOL-USD"], datetime(2021, 5, 31, tzinfo=timezone.utc), days=2)
        no_rates = funding(http, coinapi.PERP_SYMBOLS["SOL-USDT-PERP"], before_listing)
    assert empty.no_data and empty.frame.empty and "550" in empty.notes[0]
    assert schema(empty.frame) == schema(full.frame)
    assert not straddling.no_data and len(straddling.frame) == 24
    assert straddling.frame["ts"].min() == pd.Timestamp("2021-06-01", tz="UTC")
    assert no_rates.no_data and no_rates.frame.empty and list(no_rates.frame.columns) == coinapi.FUNDING_COLUMNS


def test_missing_or_wrong_key_is_no_access_and_no_key_configured_is_skipped(sandbox):
    with http_for(sandbox, headers={}) as http, pytest.raises(NoAccessError) as missing:
        ohlcv(http)
    with http_for(sandbox, key="not-the-key") as http, pytest.raises(NoAccessError) as wrong:
        ohlcv(http)
    assert missing.value.http_status == wrong.value.http_status == 401
    assert wrong.value.status == "no_access" and "Invalid API key" in str(wrong.value)
    with pytest.raises(NoCredentialsError):
        coinapi.make_http(sandbox.vendor_url("coinapi"), None)


def test_a_plan_without_metrics_fails_funding_only_and_comes_back_when_granted(sandbox):
    sandbox.deny("coinapi", r"^/v1/metrics", "not_entitled")
    with http_for(sandbox) as http:
        with pytest.raises(NotEntitledError) as err:
            funding(http)
        assert err.value.status == "not_entitled" and err.value.http_status == 404
        with pytest.raises(NotEntitledError):
            coinapi.probe(http, "funding_rate")
        assert len(ohlcv(http).frame) == 24
        coinapi.probe(http, "ohlcv_history")
        sandbox.grant("coinapi")
        coinapi.probe(http, "funding_rate")
        assert len(funding(http).frame) == 3


def test_lost_access_is_no_access_on_ohlcv(sandbox):
    sandbox.deny("coinapi", ".*", "no_access")
    with http_for(sandbox) as http:
        with pytest.raises(NoAccessError) as err:
            coinapi.probe(http, "ohlcv_history")
    assert err.value.http_status == 403 and not isinstance(err.value, NotEntitledError)
    with pytest.raises(ValueError, match="unknown CoinAPI endpoint"):
        coinapi.probe(http, "trades")


def test_spent_quota_waits_for_the_reset_instead_of_hitting_429(sandbox):
    sandbox.vendors["coinapi"].set_quota(2, 1.0, send_reset=True)
    sandbox.clear_request_log()
    with http_for(sandbox) as http:
        t0 = time.monotonic()
        frames = [ohlcv(http).frame for _ in range(4)]
        elapsed = time.monotonic() - t0
        assert http.quota_waits >= 1 and http.rate_limit.limit == 2
    assert all(f.equals(frames[0]) for f in frames)
    statuses = [e["status"] for e in sandbox.request_log if e["vendor"] == "coinapi"]
    assert statuses == [200] * 4  # the client waited; the vendor never had to refuse
    assert 0.5 < elapsed < 5


def test_spent_quota_beyond_the_wait_budget_fails_fast_without_a_request(sandbox):
    sandbox.vendors["coinapi"].set_quota(1, 3600.0)  # no x-ratelimit-reset: the current docs' headers
    with http_for(sandbox, quota_wait_max_s=5.0) as http:
        ohlcv(http)
        assert http.rate_limit.remaining == 0 and http.rate_limit.used == 1
        sent = http.requests_sent
        with pytest.raises(RateLimitedError) as err:
            ohlcv(http)
        assert http.requests_sent == sent  # refused locally: no certain 429 spent, no retries
    assert isinstance(err.value, coinapi.QuotaExhaustedError) and err.value.status == "rate_limited"
    assert "1 of 1 credits used" in str(err.value) and err.value.retry_after > 5


def test_a_vendor_429_for_spent_quota_is_retried_after_the_reset(sandbox):
    """A quota spent by someone else: the vendor's 429 carries remaining 0 and the reset."""
    twin = sandbox.vendors["coinapi"]
    twin.set_quota(1, 0.6, send_reset=True)
    with http_for(sandbox) as other:
        ohlcv(other)
    with http_for(sandbox) as http:
        assert len(ohlcv(http).frame) == 24
        assert http.retries == 1 and http.quota_waits == 1


@pytest.mark.parametrize("kind", ["429", "500", "empty_500", "reset", "timeout", "duplicate_rows"])
def test_faults_still_give_the_fault_free_frame(sandbox, kind):
    with http_for(sandbox, timeout_s=0.5) as http:
        clean = ohlcv(http, days=2, page_limit=20).frame
        clean_rates = funding(http, days=4, page_limit=5).frame
        sandbox.set_faults([FaultRule(kind, vendor="coinapi", count=2, retry_after=0.1, delay_s=1.0)])
        assert ohlcv(http, days=2, page_limit=20).frame.equals(clean)
        sandbox.set_faults([FaultRule(kind, vendor="coinapi", count=2, retry_after=0.1, delay_s=1.0)])
        assert funding(http, days=4, page_limit=5).frame.equals(clean_rates)


@pytest.mark.parametrize("kind, why", [("truncated", "not valid JSON"), ("malformed", "not valid JSON"),
                                       ("wrong_shape", "lack field")])
def test_broken_pages_fail_naming_vendor_endpoint_and_partition(sandbox, kind, why):
    # From the second page on, every answer is broken: retries (and a schema break's one re-fetch) run out.
    sandbox.set_faults([FaultRule(kind, vendor="coinapi", skip=1)])
    with http_for(sandbox) as http, pytest.raises(MalformedPayloadError, match=why) as err:
        ohlcv(http, days=2, page_limit=10)
    assert f"coinapi /v1/ohlcv/{{symbol_id}}/history (partition {PARTITION})" in str(err.value)
    sandbox.set_faults([FaultRule("truncated", vendor="coinapi")])
    with http_for(sandbox) as http, pytest.raises(MalformedPayloadError) as err:
        funding(http)
    assert "coinapi /v1/metrics/symbol/history (partition 2024-01-02|BTC-USDT-PERP)" in str(err.value)


def test_the_key_never_reaches_an_error_or_a_log_line(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    messages = []
    wrong = "wrong-key-5f3a9c"
    sandbox.set_faults([FaultRule("429", vendor="coinapi", count=1, retry_after=0.05)])
    with http_for(sandbox) as http:
        ohlcv(http)
    for key, faults in ((wrong, []), (KEY, [FaultRule("truncated", vendor="coinapi")]),
                        (KEY, [FaultRule("503", vendor="coinapi")])):
        sandbox.set_faults(faults)
        with http_for(sandbox, key=key, max_attempts=2) as http, pytest.raises(Exception) as err:
            ohlcv(http)
        messages.append(str(err.value))
    sandbox.clear_faults()
    sandbox.vendors["coinapi"].set_quota(1, 3600.0)
    with http_for(sandbox, quota_wait_max_s=0) as http, pytest.raises(RateLimitedError) as err:
        ohlcv(http)
        ohlcv(http)
    messages.append(str(err.value))

    # a vendor that echoes the key in its error body: redacted before it is raised or logged
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json={"error": f"key {request.headers['X-CoinAPI-Key']} is over its limit"})

    with coinapi.make_http("https://echo.invalid", wrong, transport=httpx.MockTransport(echo), max_attempts=2,
                           backoff_initial_s=0.01, backoff_max_s=0.02) as http, pytest.raises(RateLimitedError) as err:
        ohlcv(http)
    messages.append(str(err.value))
    assert "key *** is over its limit" in messages[-1]

    logged = [r.getMessage() for r in caplog.records]
    assert any("retry" in m for m in logged)  # the retries were logged ...
    for text in messages + logged:
        assert KEY not in text and wrong not in text  # ... and no key anywhere
