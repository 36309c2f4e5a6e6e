"""The Alpha Vantage client and twin: throttles and errors in 200 bodies, the daily budget, parsing."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timezone

import numpy as np
import pandas as pd
import pytest

from btc_platform.sandbox import FaultRule, SandboxServer
from btc_platform.sandbox.alphavantage import AlphaVantage
from btc_platform.sandbox.market import GeneratedMarket
from btc_platform.sandbox.registry import SANDBOX_KEYS
from btc_platform.sandbox.server import Request
from btc_platform.vendors import alphavantage as av
from btc_platform.vendors.errors import (
    BadRequestError,
    MalformedPayloadError,
    NoAccessError,
    NotEntitledError,
    RateLimitedError,
)
from btc_platform_tests.conftest import shared_data

KEY = SANDBOX_KEYS["alphavantage"]
INGESTED = datetime(2025, 1, 1, tzinfo=timezone.utc)
FAST = {"rate_per_s": 200.0, "burst": 20, "backoff_initial_s": 0.01, "backoff_max_s": 0.05}


@pytest.fixture(scope="module")
def server():
    with SandboxServer() as s:
        yield s


@pytest.fixture
def sandbox(server):
    """The module's server with the twin unthrottled and its counters, faults and log cleared."""
    twin = server.vendors["alphavantage"]
    twin.configure(per_minute=None, per_day=None, window_s=60.0, premium_functions=set())
    twin.reset_counters()
    server.clear_faults()
    server.grant("alphavantage")
    server.clear_request_log()
    yield server
    server.clear_faults()
    server.grant("alphavantage")
    twin.reset_counters()


def client(sandbox, key=KEY, **kw):
    return av.make_http(sandbox.vendor_url("alphavantage"), key, **{**FAST, **kw})


def av_requests(sandbox) -> list[dict]:
    return [e for e in sandbox.request_log if e["vendor"] == "alphavantage"]


def fetch(http, name, **kw):
    kw.setdefault("api_key", KEY)
    return av.fetch_series(http, name, ingested_at=INGESTED, **kw)


# -- the twin's defaults and throttles, driven directly ------------------------------------------
def twin_request(twin, key="K", **params):
    query = {k: [v] for k, v in {"apikey": key, **params}.items()}
    return twin.handle(Request("GET", "/query", query, {}, "127.0.0.1"))


def test_twin_throttles_per_minute_with_note_and_per_day_with_information():
    now = [1_700_000_000.0]
    twin = AlphaVantage(GeneratedMarket(7), clock=lambda: now[0])
    assert (twin.per_minute, twin.per_day, twin.rate_limit) == (5, 25, None)
    spy = {"function": "TIME_SERIES_DAILY", "symbol": "SPY"}
    answers = [twin_request(twin, **spy)[1] for _ in range(6)]
    assert all("Time Series (Daily)" in a for a in answers[:5])
    assert answers[5] == {"Note": answers[5]["Note"]} and "5 calls per minute" in answers[5]["Note"]
    assert "Time Series (Daily)" in twin_request(twin, key="other", **spy)[1]  # counted per key
    for _ in range(4):  # sliding minutes: 5 more per minute until 25 served today
        now[0] += 61
        assert all("Time Series (Daily)" in twin_request(twin, **spy)[1] for _ in range(5))
    now[0] += 61
    status, body, _ = twin_request(twin, **spy)
    assert status == 200 and list(body) == ["Information"] and "25 requests per day" in body["Information"]
    now[0] += 86_400  # a new UTC day
    assert "Time Series (Daily)" in twin_request(twin, **spy)[1]


def test_twin_answers_invalid_calls_with_an_error_message():
    twin = AlphaVantage(GeneratedMarket(7), per_minute=None, per_day=None)
    for params in ({"function": "TIME_SERIES_DAILY", "symbol": "NOPE"}, {"function": "NOPE"},
                   {"function": "TREASURY_YIELD", "interval": "monthly"}):
        status, body, _ = twin_request(twin, **params)
        assert status == 200 and body["Error Message"].startswith("Invalid API call")


def test_twin_is_deterministic_compact_is_the_last_100_of_full_and_weekdays_only():
    a = AlphaVantage(GeneratedMarket(7), per_minute=None, per_day=None)
    b = AlphaVantage(GeneratedMarket(7), per_minute=None, per_day=None)
    params = {"function": "FX_DAILY", "from_symbol": "EUR", "to_symbol": "USD"}
    compact = twin_request(a, **params)[1]["Time Series FX (Daily)"]
    full = twin_request(b, outputsize="full", **params)[1]["Time Series FX (Daily)"]
    assert len(compact) == 100 and list(compact.items()) == list(full.items())[:100]  # newest first
    assert min(full) == "2018-01-01" and all(date.fromisoformat(d).weekday() < 5 for d in full)
    assert all(isinstance(v, str) for rec in compact.values() for v in rec.values())


# -- contract: the vendor's real bodies and the twin's, through the same parser --------------------
def _normalised_fields(records: dict) -> set[str]:
    return {av._FIELD.match(f)["name"] for rec in records.values() for f in rec}


@pytest.mark.parametrize(
    "fixture, function, twin_series",
    [
        ("romeltorres_mock_time_series.json", "TIME_SERIES_INTRADAY", "SPY"),
        ("romeltorres_mock_crypto_currencies.json", "DIGITAL_CURRENCY_INTRADAY", "BTCUSD"),
        ("romeltorres_mock_foreign_exchange.json", "CURRENCY_EXCHANGE_RATE", "EURUSD"),
    ],
)
def test_real_bodies_and_twin_bodies_parse_to_the_same_schema(fixture, function, twin_series, sandbox):
    real = json.loads(shared_data("fixtures", "alphavantage", fixture).read_text())
    real_frame = av.parse_payload(real, function=function, series="REAL", ingested_at=INGESTED)
    assert len(real_frame) >= 1 and real_frame["ts"].is_monotonic_increasing
    assert real_frame["close"].notna().all() and (real_frame["value"] == real_frame["close"]).all()

    spec = av.SERIES[twin_series]
    with client(sandbox) as http:
        twin = http.query(av.request_params(twin_series, KEY), endpoint=spec.function)
    twin_frame = av.parse_payload(twin, function=spec.function, series=twin_series, ingested_at=INGESTED)
    assert list(real_frame.columns) == list(twin_frame.columns) == av.FRAME_COLUMNS
    assert real_frame.dtypes.equals(twin_frame.dtypes)

    # Same body conventions: "N. Field" names and numbers as strings, the same meta keys where the
    # real body is a time series of the same family.
    if "Meta Data" in real:
        real_series = next(v for k, v in real.items() if k.startswith("Time Series"))
        twin_series_body = next(v for k, v in twin.items() if k.startswith("Time Series"))
        assert all(isinstance(v, str) for rec in real_series.values() for v in rec.values())
        assert all(isinstance(v, str) for rec in twin_series_body.values() for v in rec.values())
        assert {"open", "high", "low", "close", "volume"} <= _normalised_fields(twin_series_body)
        if function == "TIME_SERIES_INTRADAY":
            assert _normalised_fields(real_series) == _normalised_fields(twin_series_body)
            real_meta = {k.split(". ", 1)[1] for k in real["Meta Data"]}
            twin_meta = {k.split(". ", 1)[1] for k in twin["Meta Data"]}
            assert {"Information", "Symbol", "Last Refreshed", "Output Size", "Time Zone"} <= real_meta & twin_meta


def test_intraday_times_are_converted_from_the_meta_time_zone():
    real = json.loads(shared_data("fixtures", "alphavantage", "romeltorres_mock_time_series.json").read_text())
    frame = av.parse_payload(real, function="TIME_SERIES_INTRADAY", series="MSFT")
    assert frame["ts"].iloc[-1] == pd.Timestamp("2017-12-18 19:56", tz="UTC")  # 14:56 US/Eastern
    assert frame["close"].iloc[-1] == 86.5 and frame["volume"].iloc[-1] == 10494


def test_digital_currency_fields_old_and_new_both_parse():
    new = {"Time Series (Digital Currency Daily)": {"2024-01-02": {
        "1. open": "1", "2. high": "3", "3. low": "0.5", "4. close": "2", "5. volume": "10"}}}
    old = {"Meta Data": {"4. Market Code": "CNY"}, "Time Series (Digital Currency Daily)": {"2024-01-02": {
        "1a. open (CNY)": "7", "1b. open (USD)": "1", "2a. high (CNY)": "21", "2b. high (USD)": "3",
        "3a. low (CNY)": "3.5", "3b. low (USD)": "0.5", "4a. close (CNY)": "14", "4b. close (USD)": "2",
        "5. volume": "10", "6. market cap (USD)": "20"}}}
    kw = {"function": "DIGITAL_CURRENCY_DAILY", "series": "BTCUSD", "ingested_at": INGESTED}
    a = av.parse_payload(new, market="USD", **kw)
    b = av.parse_payload(old, market="USD", **kw)
    assert a.equals(b)
    assert a[["open", "high", "low", "close", "volume", "value"]].iloc[0].tolist() == [1, 3, 0.5, 2, 10, 2]
    assert av.parse_payload(old, **kw)["close"].iloc[0] == 14  # no market given: the meta's


def test_macro_dots_are_missing_values_not_rows():
    body = {"name": "x", "interval": "daily", "unit": "percent",
            "data": [{"date": "2024-01-03", "value": "3.91"}, {"date": "2024-01-02", "value": "."}]}
    frame = av.parse_payload(body, function="TREASURY_YIELD", series="US10Y")
    assert frame["ts"].tolist() == [pd.Timestamp("2024-01-03", tz="UTC")]
    assert frame["value"].tolist() == [3.91] and frame[["open", "close", "volume"]].isna().all().all()


@pytest.mark.parametrize(
    "body, why",
    [
        ([1, 2], "expected a JSON object"),
        ({"Meta Data": {}}, "no 'Time Series"),
        ({"Time Series (Daily)": [1]}, "must map dates"),
        ({"Time Series (Daily)": {"2024-01-02": {"1. open": "1", "4. close": "1"}}}, "records lack"),
        ({"Time Series (Daily)": {"2024-01-02": {"1. open": "x", "2. high": "1", "3. low": "1",
                                                 "4. close": "1", "5. volume": "1"}}}, "non-numeric"),
        ({"Time Series (Daily)": {"yesterday": {"1. open": "1", "2. high": "1", "3. low": "1",
                                                "4. close": "1", "5. volume": "1"}}}, "do not parse"),
        ({"data": [{"date": "2024-01-02", "value": "1"}, {"date": "2024-01-02", "value": "2"}]}, "two different"),
        ({"data": [{"day": "2024-01-02"}]}, "'data' rows must be"),
    ],
)
def test_malformed_bodies_name_vendor_endpoint_and_partition(body, why):
    with pytest.raises(MalformedPayloadError, match=why) as err:
        av.parse_payload(body, function="TIME_SERIES_DAILY", series="SPY", partition="2024-01-02|SPY")
    assert "alphavantage TIME_SERIES_DAILY (partition 2024-01-02|SPY)" in str(err.value)


@pytest.mark.parametrize(
    "body, error, retryable, wait",
    [
        ({"Note": "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute "
                  "and 500 calls per day."}, RateLimitedError, True, 60.0),
        ({"Information": "Thank you for using Alpha Vantage! Please consider spreading out your free API "
                         "requests more sparingly (1 request per second)."}, RateLimitedError, True, 1.0),
        ({"Information": "We have detected your API key as K and our standard API rate limit is 25 requests "
                         "per day. Please subscribe to any of the premium plans at "
                         "https://www.alphavantage.co/premium/ to instantly remove all daily rate limits."},
         av.DailyLimitError, False, None),
        ({"Information": "Thank you for using Alpha Vantage! This is a premium endpoint. You may subscribe to "
                         "any of the premium plans ..."}, NotEntitledError, False, None),
        ({"Information": "Thank you for using Alpha Vantage! The outputsize=full parameter value is a premium "
                         "feature for the TIME_SERIES_DAILY endpoint."}, NotEntitledError, False, None),
        ({"Information": "Something new."}, RateLimitedError, False, None),
        ({"Error Message": "the parameter apikey is invalid or missing. Please claim your free API key on "
                           "(https://www.alphavantage.co/support/#api-key)."}, NoAccessError, False, None),
        ({"Error Message": "Invalid API call. Please retry or visit the documentation."}, BadRequestError, False,
         None),
    ],
)
def test_bodies_in_place_of_data_map_to_the_taxonomy(body, error, retryable, wait):
    with pytest.raises(error) as err:
        av.check_body(body, endpoint="TIME_SERIES_DAILY", partition="2024-01-02|SPY", throttle_wait_s=60.0)
    assert type(err.value) is error and err.value.retryable is retryable and err.value.retry_after == wait
    assert "alphavantage TIME_SERIES_DAILY (partition 2024-01-02|SPY): HTTP 200" in str(err.value)
    av.check_body({**body, "data": []}, endpoint="WTI")  # data wins over a stray notice


# -- against the sandbox ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(av.SERIES))
def test_every_series_parses_from_the_sandbox(name, sandbox):
    spec = av.SERIES[name]
    with client(sandbox) as http:
        got = fetch(http, name, partition=f"latest|{name}")
    frame = got.frame
    assert got.requests == 1 and list(frame.columns) == av.FRAME_COLUMNS
    assert len(frame) >= 100 and frame["ts"].is_monotonic_increasing and frame["ts"].is_unique
    assert (frame["ts"] == frame["ts"].dt.normalize()).all()  # UTC days
    assert set(frame["series"]) == {name} and set(frame["function"]) == {spec.function}
    assert set(frame["source"]) == {"alphavantage"} and frame["value"].notna().all()
    if spec.kind == "value":
        assert frame[["open", "high", "low", "close", "volume"]].isna().all().all()
    else:
        assert (frame["value"] == frame["close"]).all()
        assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
        assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
        assert frame["volume"].notna().all() == (spec.kind == "ohlcv")
    if spec.calendar == "weekdays":
        assert (frame["ts"].dt.weekday < 5).all()
    expected_level = {"SPY": 470, "QQQ": 400, "EURUSD": 1.09, "USDJPY": 145, "US10Y": 4.3, "US2Y": 4.6,
                      "WTI": 75, "BRENT": 80}.get(name)
    if expected_level is not None:
        assert 0.5 * expected_level < frame["value"].median() < 2 * expected_level


def test_btc_daily_bars_are_the_generated_minutes_aggregated(sandbox):
    with client(sandbox) as http:
        got = fetch(http, "BTCUSD", start="2024-01-02", end="2024-01-04")
    minutes = GeneratedMarket(7).minutes("BTC-USD", "2024-01-02", "2024-01-03")
    row = got.frame.iloc[0]
    assert got.frame["ts"].tolist() == [pd.Timestamp("2024-01-02", tz="UTC"), pd.Timestamp("2024-01-03", tz="UTC")]
    assert row["open"] == minutes["open"].iloc[0] and row["close"] == minutes["close"].iloc[-1]
    assert row["high"] == minutes["high"].max() and row["low"] == minutes["low"].min()
    np.testing.assert_allclose(row["volume"], minutes["volume"].sum(), rtol=1e-9)


def test_window_is_half_open_and_compact_reports_what_it_cannot_cover(sandbox):
    with client(sandbox) as http:
        full = fetch(http, "SPY", outputsize="full", start="2024-01-02", end="2024-01-09")
        compact = fetch(http, "SPY", start="2024-01-02", end="2024-01-09")
    assert [t.date().isoformat() for t in full.frame["ts"]] == [
        "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"]
    assert full.covers("2024-01-02") and full.first_available == pd.Timestamp("2018-01-01", tz="UTC")
    assert compact.frame.empty and not compact.covers("2024-01-02")  # unknown, not "no data"
    queries = [e["query"] for e in av_requests(sandbox)]
    assert "outputsize=full" in queries[0] and "outputsize=compact" in queries[1]


def test_per_minute_note_is_waited_out_and_yields_the_same_data(sandbox, caplog):
    twin = sandbox.vendors["alphavantage"]
    with client(sandbox) as http:
        clean = fetch(http, "QQQ").frame
    twin.reset_counters()
    twin.configure(per_minute=2, window_s=0.6)
    sandbox.clear_request_log()
    with client(sandbox, throttle_wait_s=0.7) as http:
        fetch(http, "EURUSD")
        fetch(http, "USDJPY")
        got = fetch(http, "QQQ")  # the third within the window: a Note, waited out, then data
    assert got.frame.equals(clean) and got.requests == 2 and http.retries == 1
    assert [e["status"] for e in av_requests(sandbox)] == [200, 200, 200, 200]
    assert "throttled (per minute)" in caplog.text


def test_daily_cap_raises_at_once_without_retries_and_spends_the_budget(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox.vendors["alphavantage"].configure(per_day=2)
    budget = av.RequestBudget(limit_per_day=25)
    with client(sandbox) as http:
        fetch(http, "SPY", budget=budget)
        fetch(http, "WTI", budget=budget)
        with pytest.raises(RateLimitedError, match="daily request limit reached") as err:
            fetch(http, "BRENT", budget=budget, partition="2024-01-02|BRENT")
        assert err.value.status == "rate_limited" and not err.value.retryable
        assert http.requests_sent == 3 and http.retries == 0
        # The vendor said the day is over: the budget believes it, and the next call sends nothing.
        assert budget.remaining == 0
        with pytest.raises(RateLimitedError, match="daily budget of 25 requests exhausted"):
            fetch(http, "US2Y", budget=budget)
    assert len(av_requests(sandbox)) == 3
    # The vendor's daily-cap notice quotes the key: it must be gone from messages and logs.
    assert "We have detected your API key as ***" in str(err.value)
    assert KEY not in str(err.value) and KEY not in caplog.text
    assert "apikey=***" in caplog.text or "apikey" not in caplog.text


def test_budget_exhaustion_refuses_without_sending(sandbox):
    budget = av.RequestBudget(limit_per_day=3, used_today=2)
    with client(sandbox) as http:
        fetch(http, "US10Y", budget=budget)
        assert budget.remaining == 0 and not budget.can_spend()
        with pytest.raises(RateLimitedError, match="daily budget of 3 requests exhausted.*nothing sent") as err:
            fetch(http, "US2Y", budget=budget, partition="2024-01-02|US2Y")
    assert "alphavantage TREASURY_YIELD (partition 2024-01-02|US2Y)" in str(err.value)
    assert len(av_requests(sandbox)) == 1 and budget.used_today == 3


def test_budget_round_trips_and_starts_afresh_on_a_new_utc_day():
    today = datetime.now(timezone.utc).date()
    budget = av.RequestBudget(limit_per_day=25, used_today=7, day=today)
    again = av.RequestBudget.from_dict(json.loads(json.dumps(budget.to_dict())))
    assert again.to_dict() == {"limit_per_day": 25, "used_today": 7, "day": today.isoformat()}
    assert again.remaining == 18 and again.can_spend(18) and not again.can_spend(19)
    stale = av.RequestBudget.from_dict({"limit_per_day": 25, "used_today": 25, "day": "2020-01-01"})
    assert stale.remaining == 25 and stale.to_dict()["day"] == today.isoformat()
    assert av.RequestBudget.from_dict(None).remaining == 25


def test_plan_fits_the_budget_in_priority_order_and_defers_the_rest():
    today = date(2024, 6, 3)
    budget = av.RequestBudget(limit_per_day=25, used_today=21)  # 4 left
    planned, deferred = av.plan_requests(
        [("SPY", date(2024, 5, 31)), ("EURUSD", None), ("QQQ", date(2023, 1, 2)), "US10Y",
         ("BTCUSD", True), ("WTI", True), ("BRENT", date(2024, 5, 31))],
        budget, today=today,
    )
    assert planned == [av.PlannedRequest("SPY", "compact"), av.PlannedRequest("EURUSD", "full"),
                       av.PlannedRequest("QQQ", "full"), av.PlannedRequest("US10Y", "full")]
    assert deferred == ["BTCUSD", "WTI", "BRENT"]
    assert budget.remaining == 4  # planning spends nothing
    planned, deferred = av.plan_requests({"SPY": True, "QQQ": True}, budget, reserve=3)
    assert [p.series for p in planned] == ["SPY"] and deferred == ["QQQ"]
    assert av.plan_requests(["SPY"], None)[0] == [av.PlannedRequest("SPY", "full")]
    with pytest.raises(ValueError, match="unknown Alpha Vantage series"):
        av.plan_requests(["DOGE"], budget)


def test_premium_denial_is_not_entitled_and_not_retried(sandbox):
    sandbox.deny("alphavantage")
    with client(sandbox) as http:
        with pytest.raises(NotEntitledError, match="premium endpoint") as err:
            fetch(http, "BTCUSD", partition="2024-01-02|BTCUSD")
        assert err.value.status == "not_entitled" and http.requests_sent == 1
        sandbox.grant("alphavantage")
        sandbox.vendors["alphavantage"].configure(premium_functions={"DIGITAL_CURRENCY_DAILY"})
        with pytest.raises(NotEntitledError):
            fetch(http, "BTCUSD")
        assert fetch(http, "SPY").requests == 1  # other functions still served


def test_wrong_key_is_no_access_and_the_key_never_leaks(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "WRONGKEY12345"
    with client(sandbox, key=wrong) as http:
        with pytest.raises(NoAccessError, match="apikey is invalid or missing") as err:
            fetch(http, "SPY", api_key=wrong)
        assert err.value.status == "no_access" and http.requests_sent == 1
        result = av.probe(http, wrong)
    assert result.status == "no_access" and not result.ok and result.requests == 1
    assert wrong not in str(err.value) and wrong not in result.message and wrong not in caplog.text
    assert "HTTP Request" in caplog.text  # httpx's request line was logged, with the key redacted


def test_probe_reports_ok_and_spends_one_request(sandbox):
    budget = av.RequestBudget(limit_per_day=5)
    with client(sandbox) as http:
        result = av.probe(http, KEY, budget)
        assert result.ok and result.requests == 1 and budget.remaining == 4
        assert av.probe(http, "", budget).status == "no_credentials"
        assert av.probe(http, KEY, av.RequestBudget(limit_per_day=0)).status == "rate_limited"
    assert len(av_requests(sandbox)) == 1


def test_invalid_call_is_a_bad_request(sandbox):
    with client(sandbox) as http:
        with pytest.raises(BadRequestError, match="Invalid API call"):
            http.query({"function": "TIME_SERIES_DAILY", "symbol": "NOPE", "apikey": KEY},
                       endpoint="TIME_SERIES_DAILY")
        assert http.requests_sent == 1


@pytest.mark.parametrize("kind", ["truncated", "malformed", "wrong_shape"])
def test_broken_bodies_fail_naming_vendor_endpoint_and_partition(kind, sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox.set_faults([FaultRule(kind, vendor="alphavantage")])
    with client(sandbox) as http:
        with pytest.raises(MalformedPayloadError) as err:
            fetch(http, "SPY", partition="2024-01-02|SPY")
    assert "alphavantage TIME_SERIES_DAILY (partition 2024-01-02|SPY)" in str(err.value)
    assert KEY not in str(err.value) and KEY not in caplog.text


def test_transient_failures_and_429_are_retried(sandbox):
    sandbox.set_faults([FaultRule("503", vendor="alphavantage", count=1),
                        FaultRule("429", vendor="alphavantage", count=1, retry_after=0.05)])
    budget = av.RequestBudget(limit_per_day=25)
    with client(sandbox) as http:
        got = fetch(http, "US10Y", budget=budget)
    assert got.requests == 3 and len(got.frame) > 100
    assert budget.used_today == 3  # every request sent is paid for, retries included


def test_repeated_notes_give_up_after_the_throttle_attempts(sandbox):
    sandbox.vendors["alphavantage"].configure(per_minute=0)  # every request throttled
    with client(sandbox, throttle_wait_s=0.01, throttle_attempts=3) as http:
        with pytest.raises(RateLimitedError, match="still throttled after 3 attempts"):
            fetch(http, "SPY")
    assert len(av_requests(sandbox)) == 3


def test_fetch_needs_a_key_and_the_alpha_vantage_client(sandbox):
    from btc_platform.vendors.errors import NoCredentialsError
    from btc_platform.vendors.http import VendorHTTP

    with client(sandbox) as http:
        with pytest.raises(NoCredentialsError):
            fetch(http, "SPY", api_key="")
    with VendorHTTP(vendor="alphavantage", base_url=sandbox.vendor_url("alphavantage")) as plain:
        with pytest.raises(TypeError, match="make_http"):
            fetch(plain, "SPY")
    assert av_requests(sandbox) == []
