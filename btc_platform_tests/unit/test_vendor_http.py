"""The shared HTTP core against the sandbox: retries, Retry-After, the error taxonomy, redaction."""

import logging
import time

import pytest

from btc_platform.sandbox import FaultRule
from btc_platform.vendors.errors import (
    BadRequestError,
    MalformedPayloadError,
    NoAccessError,
    RateLimitedError,
    TransientError,
)
from btc_platform.vendors.http import RateLimiter, VendorHTTP, redacted_params

PATH = "/products/BTC-USD/candles"
PARAMS = {"granularity": 60, "start": "2024-01-01T00:00:00+00:00", "end": "2024-01-01T00:09:00+00:00"}
SECRET = "sk-test-6f1b2c9d"


def http_for(sandbox, **kw) -> VendorHTTP:
    kw.setdefault("backoff_initial_s", 0.01)
    kw.setdefault("backoff_max_s", 0.05)
    return VendorHTTP(vendor="coinbase", base_url=sandbox.coinbase_url(), rate_per_s=10, **kw)


def get(http):
    return http.get_json(PATH, PARAMS, endpoint="/products/{id}/candles", partition="2024-01-01|BTC-USD")


@pytest.mark.parametrize("kind", ["429", "500", "502", "503", "empty_500", "reset", "timeout"])
def test_transient_faults_are_retried_to_the_same_answer(clean_sandbox, kind):
    with http_for(clean_sandbox, timeout_s=0.5) as http:
        expected = get(http)
        clean_sandbox.set_faults([FaultRule(kind, vendor="coinbase", count=3, delay_s=1.0)])
        assert get(http) == expected
        assert http.retries == 3


def test_retry_after_is_honoured(clean_sandbox):
    clean_sandbox.set_faults([FaultRule("429", vendor="coinbase", count=1, retry_after=0.3)])
    waits = []
    with http_for(clean_sandbox) as http:
        http._before_sleep = lambda state: waits.append(state.next_action.sleep)
        get(http)
    assert waits == [0.3]


def test_retry_budget_runs_out_with_the_vendors_class(clean_sandbox):
    clean_sandbox.set_faults([FaultRule("429", vendor="coinbase")])
    with http_for(clean_sandbox, max_attempts=3) as http:
        with pytest.raises(RateLimitedError) as err:
            get(http)
    assert http.requests_sent == 3
    assert err.value.status == "rate_limited"
    assert "Public rate limit exceeded" in str(err.value)


def test_a_body_that_stays_cut_short_fails_naming_vendor_endpoint_partition(clean_sandbox):
    """A truncated body is retried as transient (test_retry_policy.py); one that never heals fails
    as a malformed payload once the attempts are spent."""
    clean_sandbox.set_faults([FaultRule("truncated", vendor="coinbase")])
    with http_for(clean_sandbox, max_attempts=3) as http:
        with pytest.raises(MalformedPayloadError) as err:
            get(http)
    assert http.requests_sent == 3
    message = str(err.value)
    assert "coinbase" in message and "/products/{id}/candles" in message and "2024-01-01|BTC-USD" in message


def test_bad_request_carries_the_vendors_message(clean_sandbox):
    with http_for(clean_sandbox) as http:
        with pytest.raises(BadRequestError, match="Unsupported granularity"):
            http.get_json(PATH, {**PARAMS, "granularity": 61}, endpoint="candles")
        assert http.requests_sent == 1


def test_status_mapping_and_redaction(clean_sandbox, caplog):
    """A vendor may map a status to its own class; a key never appears in errors or logs."""
    clean_sandbox.set_faults([FaultRule("503", vendor="coinbase")])
    caplog.set_level(logging.DEBUG, logger="btc_platform")
    with http_for(clean_sandbox, status_errors={503: NoAccessError}, secrets=(SECRET,),
                  headers={"X-Api-Key": SECRET}) as http:
        with pytest.raises(NoAccessError) as err:
            http.get_json(PATH, {**PARAMS, "api_key": SECRET}, endpoint=f"candles?key={SECRET}")
    assert err.value.status == "no_access"
    assert SECRET not in str(err.value)
    assert SECRET not in caplog.text
    assert redacted_params({"api_key": SECRET, "a": 1}) == {"api_key": "***", "a": 1}


def test_transport_errors_classify_as_transient(clean_sandbox):
    clean_sandbox.set_faults([FaultRule("reset", vendor="coinbase")])
    with http_for(clean_sandbox, max_attempts=2) as http:
        with pytest.raises(TransientError, match="connection error"):
            get(http)


def test_rate_limiter_keeps_a_burst_under_the_vendors_limit(sandbox):
    """40 requests through a 10/s limiter against the sandbox's real 10/s limit: none rejected."""
    sandbox.clear_faults()
    before = len(sandbox.request_log)
    with VendorHTTP(vendor="coinbase-limit-test", base_url=sandbox.coinbase_url(), rate_per_s=9.5,
                    max_attempts=1) as http:
        for _ in range(40):
            get(http)
    # The sandbox logs a request once its response is out: give the last entry a moment to land.
    deadline = time.monotonic() + 2
    while len(sandbox.request_log) < before + 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    statuses = [r["status"] for r in sandbox.request_log[before:]]
    assert len(statuses) == 40 and set(statuses) == {200}


def test_rate_limiter_spaces_tokens():
    limiter = RateLimiter(rate=1000.0, burst=2)
    waited = [limiter.acquire() for _ in range(4)]
    assert waited[:2] == [0.0, 0.0] and all(w > 0 for w in waited[2:])
