"""The CryptoQuant client against its twin: every metric daily and hourly, the hourly -> daily fallback,
the error taxonomy (incl. `status.code` inside an HTTP 200 body), faults, and no token in any message."""

import json
import logging
from datetime import datetime, timedelta, timezone

import httpx
import numpy as np
import pandas as pd
import pytest

from btc_platform.sandbox import FaultRule
from btc_platform.sandbox.cryptoquant import CryptoQuant, deny_hourly, grant_hourly
from btc_platform.sandbox.registry import SANDBOX_KEYS
from btc_platform.sandbox.server import Request
from btc_platform.vendors import cryptoquant as cq
from btc_platform.vendors.errors import (
    BadRequestError,
    MalformedPayloadError,
    NoAccessError,
    NoCredentialsError,
    NotEntitledError,
    RateLimitedError,
)

TOKEN = SANDBOX_KEYS["cryptoquant"]
UTC = timezone.utc
DAY = datetime(2024, 1, 2, tzinfo=UTC)
PARTITION = "2024-01-02"
INGESTED = datetime(2025, 1, 1, tzinfo=UTC)
NETFLOW = "exchange_netflow_total"
WHERE = f"cryptoquant /v1/btc/exchange-flows/netflow (window=hour) (partition {PARTITION})"


@pytest.fixture
def cq_sandbox(clean_sandbox):
    yield clean_sandbox
    grant_hourly(clean_sandbox)
    clean_sandbox.grant("cryptoquant")


def http_for(sandbox, token=TOKEN, **kw):
    kw.setdefault("backoff_initial_s", 0.01)
    kw.setdefault("backoff_max_s", 0.05)
    return cq.make_http(sandbox.vendor_url("cryptoquant"), token, **kw)


def fetch(http, metric=NETFLOW, window="hour", days=1, start=DAY):
    return cq.fetch_metric(http, metric, start, start + timedelta(days=days), window=window,
                           partition=PARTITION, ingested_at=INGESTED)


# -- request building and page validation -----------------------------------------------------
def test_request_windows_and_documented_time_formats():
    assert cq.request_windows(DAY, DAY + timedelta(days=1), "hour") == [
        (DAY, DAY + timedelta(hours=23), 24)]
    assert cq.request_windows(DAY, DAY + timedelta(days=3), "day") == [(DAY, DAY + timedelta(days=2), 3)]
    # a start inside a window begins at the next full one; long ranges split at max_rows
    parts = cq.request_windows(DAY + timedelta(minutes=1), DAY + timedelta(days=1), "hour", max_rows=10)
    assert [p[2] for p in parts] == [10, 10, 3] and parts[0][0] == DAY + timedelta(hours=1)
    assert cq.format_time(DAY, "day") == "20240102"
    assert cq.format_time(DAY + timedelta(hours=13), "hour") == "20240102T130000"
    with pytest.raises(ValueError, match="block"):
        cq.request_windows(DAY, DAY + timedelta(days=1), "block")


def page(*rows, window="hour", code=200):
    return {"status": {"code": code, "message": "success"}, "result": {"window": window, "data": list(rows)}}


@pytest.mark.parametrize(
    "payload, why",
    [
        ([1, 2], "expected the status/result envelope"),
        ({"result": {"window": "hour", "data": []}}, "no success status"),
        ({"status": {"code": 200}}, "no `result` object"),
        ({"status": {"code": 200}, "result": {"window": "hour", "data": {}}}, "must be a list"),
        (page({"datetime": "2024-01-02 01:00:00"}), "lacks the field `netflow_total`"),
        (page({"datetime": "2024-01-02 01:00:00", "netflow_total": "12.5"}), "not a number"),
        (page({"datetime": "2024-01-02 01:00:00", "netflow_total": None}), "not a number"),
        (page({"datetime": "2 Jan 2024", "netflow_total": 1.0}), "no readable"),
        (page({"datetime": "2024-01-02 01:30:00", "netflow_total": 1.0}), "not aligned"),
        (page({"datetime": "2024-01-03 00:00:00", "netflow_total": 1.0}), "outside the requested"),
        (page({"date": "2024-01-02", "netflow_total": 1.0}, window="day"), "answered window='day'"),
    ],
)
def test_malformed_pages_name_vendor_endpoint_and_partition(payload, why):
    with pytest.raises(MalformedPayloadError, match=why) as err:
        cq.parse_page(payload, metric=NETFLOW, window="hour",
                      bounds=(DAY, DAY + timedelta(hours=23)), partition=PARTITION)
    assert WHERE in str(err.value)


# -- every metric, daily and hourly ------------------------------------------------------------
@pytest.mark.parametrize("metric", sorted(cq.METRICS))
def test_each_metric_daily_and_hourly(cq_sandbox, metric):
    with http_for(cq_sandbox) as http:
        daily = fetch(http, metric, "day", days=3)
        assert list(daily.columns) == cq.COLUMNS
        assert list(daily["ts"]) == list(pd.date_range(DAY, periods=3, freq="D", tz="UTC"))
        assert daily["value"].dtype == np.float64 and daily["value"].notna().all()
        assert set(daily["window"]) == {"day"} and not daily["is_fallback"].any()
        assert set(daily["metric"]) == {metric} and set(daily["source"]) == {"cryptoquant"}
        assert (daily["ingested_at"] == pd.Timestamp(INGESTED)).all()
        if "hour" not in cq.METRICS[metric].windows:  # MVRV: refused before any request
            sent = http.requests_sent
            with pytest.raises(ValueError, match="not 'hour'"):
                fetch(http, metric, "hour")
            assert http.requests_sent == sent
            return
        hourly = fetch(http, metric, "hour")
    assert list(hourly["ts"]) == list(pd.date_range(DAY, periods=24, freq="h", tz="UTC"))
    assert set(hourly["window"]) == {"hour"} and hourly["value"].notna().all()


def test_series_are_consistent_and_plausible(cq_sandbox):
    year = datetime(2023, 1, 1, tzinfo=UTC)
    with http_for(cq_sandbox) as http:
        daily = {m: fetch(http, m, "day", days=368, start=year).set_index("ts")["value"]
                 for m in ("exchange_netflow_total", "exchange_inflow_total", "exchange_outflow_total",
                           "exchange_reserve", "exchange_whale_ratio", "transactions_count_total")}
        hourly = {m: fetch(http, m, "hour", days=2).set_index("ts")["value"]
                  for m in ("exchange_netflow_total", "exchange_reserve", "transactions_count_total")}
    two_days = slice(DAY, DAY + timedelta(hours=47))
    np.testing.assert_allclose(daily["exchange_inflow_total"] - daily["exchange_outflow_total"],
                               daily["exchange_netflow_total"], atol=1e-6)
    np.testing.assert_allclose(hourly["exchange_netflow_total"].resample("D").sum(),
                               daily["exchange_netflow_total"][two_days], rtol=1e-9, atol=1e-6)
    np.testing.assert_array_equal(hourly["transactions_count_total"].resample("D").sum(),
                                  daily["transactions_count_total"][two_days])
    # the reserve is reported at the end of each window: a day's equals its last hour's
    np.testing.assert_allclose(hourly["exchange_reserve"].resample("D").last(),
                               daily["exchange_reserve"][two_days])
    np.testing.assert_allclose(daily["exchange_reserve"].diff().dropna(),
                               daily["exchange_netflow_total"].iloc[1:], atol=1e-6)
    assert daily["exchange_reserve"].between(2.0e6, 3.0e6).all()
    assert daily["exchange_whale_ratio"].between(0.3, 0.9).all()
    assert daily["exchange_netflow_total"].abs().max() < 20_000
    assert daily["exchange_netflow_total"].abs().median() > 300


# -- hourly not in the plan: daily served in its place, and marked --------------------------------
def test_hourly_denied_falls_back_to_daily_marked(cq_sandbox):
    with http_for(cq_sandbox) as http:
        daily = fetch(http, window="day")
        deny_hourly(cq_sandbox)
        frame, served, reason = cq.fetch_with_fallback(http, NETFLOW, DAY, DAY + timedelta(days=1),
                                                       PARTITION, ingested_at=INGESTED)
        assert served == "day" and "HTTP 403" in reason and "forbidden" in reason
        assert frame["is_fallback"].all() and set(frame["window"]) == {"day"}
        assert set(frame["source"]) == {"cryptoquant"}
        pd.testing.assert_frame_equal(frame.drop(columns="is_fallback"), daily.drop(columns="is_fallback"))
        with pytest.raises(NotEntitledError) as err:
            cq.probe(http, "exchange_flows_hour")
        assert err.value.status == "not_entitled"
        cq.probe(http, "exchange_flows_day")

        both = cq.fetch_metrics(http, DAY, DAY + timedelta(days=1), [NETFLOW, "mvrv"], PARTITION)
        assert both.served == {NETFLOW: "day", "mvrv": "day"}
        assert set(both.fallbacks) == {NETFLOW}  # MVRV is daily by nature, not a fallback
        assert both.frame.groupby("metric")["is_fallback"].all().to_dict() == {NETFLOW: True, "mvrv": False}

        grant_hourly(cq_sandbox)  # access restored
        frame, served, reason = cq.fetch_with_fallback(http, NETFLOW, DAY, DAY + timedelta(days=1), PARTITION)
        assert (served, reason, len(frame), frame["is_fallback"].any()) == ("hour", None, 24, False)
        cq.probe(http, "exchange_flows_hour")


def test_an_endpoint_outside_the_plan_fails_without_fallback(cq_sandbox):
    cq_sandbox.deny("cryptoquant", r"^/v1/btc/exchange-flows/")
    with http_for(cq_sandbox) as http:
        with pytest.raises(NotEntitledError, match=r"window=day"):
            cq.fetch_with_fallback(http, NETFLOW, DAY, DAY + timedelta(days=1), PARTITION)
        cq.probe(http, "network_data_hour")  # other endpoints still answer


# -- credentials --------------------------------------------------------------------------------
def test_no_token_is_no_credentials_and_the_twin_answers_401(cq_sandbox):
    with pytest.raises(NoCredentialsError) as err:
        cq.make_http(cq_sandbox.vendor_url("cryptoquant"), "")
    assert err.value.status == "no_credentials"
    url = cq_sandbox.vendor_url("cryptoquant") + "/v1/btc/network-data/transactions-count"
    answer = httpx.get(url, params={"window": "day"})
    assert answer.status_code == 401 and answer.json()["status"]["message"] == "unauthorized"


@pytest.mark.parametrize("token", ["wrong-token-123456", TOKEN[:-1]])
def test_rejected_token_is_no_access_and_never_shown(cq_sandbox, caplog, token):
    caplog.set_level(logging.DEBUG)
    with http_for(cq_sandbox, token=token) as http:
        with pytest.raises(NoAccessError) as err:
            cq.fetch_with_fallback(http, NETFLOW, DAY, DAY + timedelta(days=1), PARTITION)
        assert http.requests_sent == 1  # not retried, and no fallback to daily
        with pytest.raises(NoAccessError):
            cq.probe(http, "exchange_flows_day")
    assert err.value.status == "no_access" and err.value.http_status == 401
    assert "unauthorized" in str(err.value) and PARTITION in str(err.value)
    for secret in (token, TOKEN):
        assert secret not in str(err.value) and secret not in caplog.text


# -- faults -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "rules",
    [
        [FaultRule("429", vendor="cryptoquant", count=2)],
        [FaultRule("500", vendor="cryptoquant", count=2), FaultRule("503", vendor="cryptoquant", count=1)],
        [FaultRule("empty_500", vendor="cryptoquant", count=1), FaultRule("reset", vendor="cryptoquant", count=1)],
        [FaultRule("duplicate_rows", vendor="cryptoquant", count=1)],
    ],
    ids=["429x2", "5xx-burst", "empty500-reset", "duplicates"],
)
def test_transient_faults_give_the_same_frame(cq_sandbox, caplog, rules):
    caplog.set_level(logging.DEBUG)
    with http_for(cq_sandbox) as http:
        clean = fetch(http)
        cq_sandbox.set_faults(rules)
        pd.testing.assert_frame_equal(fetch(http), clean)
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(
    "kind, why",
    [("truncated", "not valid JSON"), ("malformed", "not valid JSON"), ("wrong_shape", "must be a list")],
)
def test_broken_bodies_fail_naming_vendor_endpoint_partition(cq_sandbox, caplog, kind, why):
    caplog.set_level(logging.DEBUG)
    cq_sandbox.set_faults([FaultRule(kind, vendor="cryptoquant")])  # broken however often it is asked
    with http_for(cq_sandbox) as http:
        with pytest.raises(MalformedPayloadError, match=why) as err:
            fetch(http)
    assert WHERE in str(err.value)
    assert TOKEN not in str(err.value) and TOKEN not in caplog.text


def test_rate_limit_budget_runs_out_as_rate_limited(cq_sandbox):
    cq_sandbox.set_faults([FaultRule("429", vendor="cryptoquant")])
    with http_for(cq_sandbox, max_attempts=3) as http:
        with pytest.raises(RateLimitedError, match="too_many_requests"):
            fetch(http)


# -- the request on the wire and `status.code` inside an HTTP 200 body ---------------------------
def mock_http(answers, seen):
    answers = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, body = answers.pop(0)
        return httpx.Response(status, json=body)

    return cq.make_http("https://api.cryptoquant.com", TOKEN, transport=httpx.MockTransport(handler),
                        backoff_initial_s=0.01, backoff_max_s=0.02)


def good_day_page():
    return page({"date": "2024-01-02", "netflow_total": -12.5}, window="day")


def test_request_follows_the_documented_api():
    seen = []
    with mock_http([(200, good_day_page())], seen) as http:
        frame = fetch(http, window="day")
    (req,) = seen
    assert req.url.path == "/v1/btc/exchange-flows/netflow"
    assert dict(req.url.params) == {"exchange": "all_exchange", "window": "day", "from": "20240102",
                                    "to": "20240102", "limit": "1"}
    assert req.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in str(req.url)
    assert frame["value"].tolist() == [-12.5]


@pytest.mark.parametrize(
    "code, cls",
    [(401, NoAccessError), (403, NotEntitledError), (400, BadRequestError), (404, BadRequestError)],
)
def test_error_status_inside_http_200_is_classified_like_the_http_status(code, cls):
    body = {"status": {"code": code, "message": "x", "description": f"echo {TOKEN}"}}
    with mock_http([(200, body)], []) as http:
        with pytest.raises(cls) as err:
            fetch(http, window="day")
    assert f"status.code {code}" in str(err.value) and TOKEN not in str(err.value)
    assert http.requests_sent == 1


def test_429_inside_http_200_is_retried():
    throttle = {"status": {"code": 429, "message": "too_many_requests"}}
    with mock_http([(200, throttle), (200, throttle), (200, good_day_page())], []) as http:
        frame = fetch(http, window="day")
    assert http.retries == 2 and frame["value"].tolist() == [-12.5]


def test_error_bodies_read_as_message_and_description():
    body = {"status": {"code": 403, "message": "forbidden", "description": "Plan lacks window=hour."}}
    with mock_http([(403, body)], []) as http:
        with pytest.raises(NotEntitledError, match="HTTP 403 forbidden: Plan lacks window=hour"):
            fetch(http)


# -- the twin's own contract ----------------------------------------------------------------------
def twin_get(twin, path, method="GET", **query):
    return twin.handle(Request(method, path, {k: [str(v)] for k, v in query.items()}, {}, "127.0.0.1"))


def test_twin_answers_like_the_documentation():
    clock = datetime(2024, 1, 3, 5, 30, tzinfo=UTC).timestamp()
    twin = CryptoQuant(seed=7, clock=lambda: clock)
    status, body, _ = twin_get(twin, "/v1/btc/exchange-flows/reserve", exchange="all_exchange",
                               window="hour", limit=3)
    assert status == 200 and body["status"] == {"code": 200, "message": "success"}
    # the latest completed hours, newest first
    assert [r["datetime"] for r in body["result"]["data"]] == [
        "2024-01-03 04:00:00", "2024-01-03 03:00:00", "2024-01-03 02:00:00"]
    status, body, _ = twin_get(twin, "/v1/btc/exchange-flows/reserve", exchange="all_exchange", window="day")
    assert body["result"]["window"] == "day" and body["result"]["data"][0]["date"] == "2024-01-02"
    assert len(body["result"]["data"]) == 100  # the default limit
    for kwargs, code in [
        ({"path": "/v1/btc/market-indicator/mvrv", "window": "hour"}, 400),
        ({"path": "/v1/btc/exchange-flows/netflow", "window": "day"}, 400),  # exchange is required
        ({"path": "/v1/btc/network-data/transactions-count", "limit": 100001}, 400),
        ({"path": "/v1/btc/network-data/transactions-count", "from": "2024-01-02 00:00"}, 400),
        ({"path": "/v1/btc/no-such-metric"}, 404),
        ({"path": "/v1/btc/network-data/transactions-count", "method": "POST"}, 405),
    ]:
        status, body, _ = twin_get(twin, **kwargs)
        assert status == code and body["status"]["code"] == code, kwargs
    status, body = twin.entitlement_error("not_entitled", None)  # what a denied window answers
    assert status == 403 and body["status"]["message"] == "forbidden"


def test_twin_is_deterministic_by_seed():
    def answer(seed):
        twin = CryptoQuant(seed=seed, clock=lambda: datetime(2024, 6, 1, tzinfo=UTC).timestamp())
        return json.dumps(twin_get(twin, "/v1/btc/exchange-flows/netflow", exchange="all_exchange",
                                   window="hour", **{"from": "20240102", "to": "20240103"})[1])

    assert answer(7) == answer(7) != answer(8)
