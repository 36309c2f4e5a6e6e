"""The retry policy against the sandbox's faults: unreadable bodies cost retries, not partitions; a
schema break repeated is final; a bad base URL is final at once; time is bounded per attempt and per
request."""

import time
from datetime import datetime, timezone

import pytest

from btc_platform.sandbox import FaultRule
from btc_platform.vendors import coinbase
from btc_platform.vendors.errors import (
    ConfigurationError,
    MalformedPayloadError,
    RateLimitedError,
    TransientError,
    VendorError,
)
from btc_platform.vendors.http import VendorHTTP

PATH = "/products/BTC-USD/candles"
WINDOW = (datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2024, 1, 1, 0, 9, tzinfo=timezone.utc))
PARAMS = {"granularity": 60, "start": WINDOW[0].isoformat(), "end": WINDOW[1].isoformat()}
PARTITION = "2024-01-01|BTC-USD"


def http_for(sandbox, **kw) -> VendorHTTP:
    kw.setdefault("backoff_initial_s", 0.01)
    kw.setdefault("backoff_max_s", 0.05)
    return VendorHTTP(vendor="coinbase", base_url=sandbox.coinbase_url(), rate_per_s=10, **kw)


def get(http, **kw):
    return http.get_json(PATH, PARAMS, endpoint=coinbase.ENDPOINT, partition=PARTITION, **kw)


def parse(payload):
    return coinbase.parse_candles(payload, granularity=60, window=WINDOW, partition=PARTITION)


@pytest.mark.parametrize("kind", ["truncated", "malformed", "html_200", "gzip_corrupt", "drop_mid_body"])
def test_unreadable_bodies_are_retried_to_the_same_answer(clean_sandbox, kind):
    with http_for(clean_sandbox) as http:
        expected = get(http)
        clean_sandbox.set_faults([FaultRule(kind, vendor="coinbase", count=2)])
        assert get(http) == expected
        assert http.retries == 2 and http.requests_sent == 4


@pytest.mark.parametrize("kind, says", [
    ("truncated", "body is not valid JSON"),
    ("html_200", "body is not valid JSON but an HTML page (502 Bad Gateway)"),
    ("gzip_corrupt", "body could not be decoded"),
])
def test_an_unreadable_body_that_persists_fails_in_the_taxonomy(clean_sandbox, kind, says):
    """Not a bare zlib.error or httpx.DecodingError: a malformed payload naming where it happened."""
    clean_sandbox.set_faults([FaultRule(kind, vendor="coinbase")])
    with http_for(clean_sandbox, max_attempts=3) as http:
        with pytest.raises(MalformedPayloadError) as err:
            get(http)
    assert http.requests_sent == 3
    assert says in str(err.value) and PARTITION in str(err.value) and coinbase.ENDPOINT in str(err.value)


def test_a_schema_break_is_fetched_once_more_and_then_final_with_its_message(clean_sandbox):
    with http_for(clean_sandbox) as http:
        with pytest.raises(MalformedPayloadError) as direct:
            parse([[1, 2, 3]])  # what the sandbox's wrong_shape body gives parse_candles
        clean_sandbox.set_faults([FaultRule("wrong_shape", vendor="coinbase")])
        with pytest.raises(MalformedPayloadError) as err:
            get(http, parse=parse)
        assert http.requests_sent == 2
        assert str(err.value) == str(direct.value)


def test_a_schema_break_that_heals_on_the_refetch_is_kept(clean_sandbox):
    with http_for(clean_sandbox) as http:
        expected = parse(get(http))
        clean_sandbox.set_faults([FaultRule("wrong_shape", vendor="coinbase", count=1)])
        assert (get(http, parse=parse) == expected).all()
        assert http.retries == 1


def test_schema_breaks_raised_inside_with_retries_follow_the_same_rule():
    calls = []

    def attempt():
        calls.append(1)
        raise MalformedPayloadError("rows must be lists", vendor="v", endpoint="/e")

    http = VendorHTTP(vendor="v", base_url="http://127.0.0.1:9", backoff_initial_s=0.001, backoff_max_s=0.001)
    with pytest.raises(MalformedPayloadError, match="rows must be lists"):
        http.with_retries(attempt)
    assert len(calls) == 2


@pytest.mark.parametrize("url, says", [
    ("ftp://api.exchange.coinbase.com", "needs an http:// or https:// scheme, not ftp://"),
    ("api.exchange.coinbase.com", "needs an http:// or https:// scheme"),
    ("http://", "has no host"),
    ("http://[::1", "is not a valid URL"),
])
def test_a_bad_base_url_fails_at_once_naming_the_problem(url, says):
    started = time.monotonic()
    with pytest.raises(ConfigurationError) as err:
        VendorHTTP(vendor="coinbase", base_url=url)
    assert says in str(err.value) and "coinbase" in str(err.value)
    assert not err.value.retryable and time.monotonic() - started < 1


def test_a_trickling_body_stops_at_the_attempt_deadline(clean_sandbox):
    """Each read arrives well within timeout_s, so only a whole-response deadline can stop it."""
    clean_sandbox.set_faults([FaultRule("trickle", vendor="coinbase", delay_s=4.0)])
    with http_for(clean_sandbox, timeout_s=0.5, attempt_deadline_s=0.6, max_attempts=1) as http:
        started = time.monotonic()
        with pytest.raises(TransientError, match=r"no whole response within 0.6s"):
            get(http)
        assert time.monotonic() - started < 1.5


def test_a_trickle_is_retried_like_any_transient_fault(clean_sandbox):
    with http_for(clean_sandbox, timeout_s=0.5, attempt_deadline_s=0.6) as http:
        expected = get(http)
        clean_sandbox.set_faults([FaultRule("trickle", vendor="coinbase", delay_s=2.0, count=1)])
        assert get(http) == expected
        assert http.retries == 1


def test_a_retry_after_beyond_the_budget_ends_the_request_at_once(clean_sandbox):
    clean_sandbox.set_faults([FaultRule("429", vendor="coinbase", retry_after=30)])
    with http_for(clean_sandbox, budget_s=2.0) as http:
        started = time.monotonic()
        with pytest.raises(RateLimitedError):
            get(http)
        assert http.requests_sent == 1 and time.monotonic() - started < 1.5


def test_the_time_budget_ends_a_request_before_its_attempt_cap(clean_sandbox):
    clean_sandbox.set_faults([FaultRule("503", vendor="coinbase")])
    with http_for(clean_sandbox, budget_s=0.6, max_attempts=50, backoff_initial_s=0.2, backoff_max_s=0.2) as http:
        started = time.monotonic()
        with pytest.raises(TransientError):
            get(http)
        assert 2 <= http.requests_sent <= 4
        assert time.monotonic() - started < 1.5


def test_every_fault_kind_ends_in_a_vendor_error(clean_sandbox):
    """Whatever the sandbox does, the client raises the taxonomy, never an httpx or zlib error."""
    from btc_platform.sandbox.faults import KINDS

    with http_for(clean_sandbox, timeout_s=0.3, attempt_deadline_s=0.4, max_attempts=1) as http:
        for kind in sorted(KINDS - {"duplicate_rows", "short_page"}):  # these two answer with data
            clean_sandbox.set_faults([FaultRule(kind, vendor="coinbase", delay_s=0.8)])
            with pytest.raises(VendorError):
                get(http, parse=parse)


def test_a_schema_break_is_final_only_when_two_answers_in_a_row_agree():
    """break, 503, the same break, a good answer: the breaks were a faulty path twice, not the vendor's
    schema, so the request goes on and returns the good answer."""
    from btc_platform.vendors.errors import TransientError

    answers = iter(["break", "503", "break", "ok"])

    def attempt():
        kind = next(answers)
        if kind == "break":
            raise MalformedPayloadError("rows must be lists", vendor="v", endpoint="/e")
        if kind == "503":
            raise TransientError("HTTP 503", vendor="v", endpoint="/e")
        return kind

    http = VendorHTTP(vendor="v", base_url="http://127.0.0.1:9", backoff_initial_s=0.001, backoff_max_s=0.001)
    assert http.with_retries(attempt) == "ok"
