"""The HTTP core every vendor client shares.

httpx for transport, tenacity for retries (exponential backoff with jitter, `Retry-After` honoured),
a token-bucket rate limiter per vendor, the error taxonomy of `errors.py`, and redaction so that no key
reaches a log line or an error message.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import tenacity

from btc_platform.vendors.errors import (
    BadRequestError,
    MalformedPayloadError,
    NoAccessError,
    RateLimitedError,
    TransientError,
    VendorError,
)

log = logging.getLogger("btc_platform.vendors")

# Query parameters that carry credentials in some vendors' APIs (FRED, Alpha Vantage).
SECRET_PARAM_NAMES = {"api_key", "apikey", "token", "key", "access_token"}

def redact(text: str, secrets: tuple[str, ...] | list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text

# `api_key=...` in a logged URL, whatever its value (a wrong key is no less a secret).
_SECRET_QUERY = re.compile(
    r"(?i)([?&](?:%s)=)[^&\s\"'#]*" % "|".join(re.escape(n) for n in sorted(SECRET_PARAM_NAMES))
)


class _RedactingFilter(logging.Filter):
    """Scrubs secrets from log records, e.g. httpx's own INFO line, which prints full URLs (and so
    FRED's `api_key` and Alpha Vantage's `apikey` query parameters): registered secret values, and
    any value of a credential query parameter."""

    def __init__(self):
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is not ours to fix
            return True
        clean = _SECRET_QUERY.sub(r"\1***", redact(message, tuple(self.secrets)))
        if clean != message:
            record.msg, record.args = clean, ()
        return True


# Logger filters are not inherited: attach to the loggers that print request lines.
_redacting_filter = _RedactingFilter()
for _name in ("httpx", "btc_platform.vendors"):
    logging.getLogger(_name).addFilter(_redacting_filter)


def register_secrets(secrets) -> None:
    _redacting_filter.secrets.update(s for s in secrets if s)


def redacted_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: ("***" if k.lower() in SECRET_PARAM_NAMES else v) for k, v in (params or {}).items()}

class RateLimiter:
    """Token bucket: `rate` requests per second with bursts of up to `burst`, shared by threads."""

    def __init__(self, rate: float, burst: int = 1):
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until one is free; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return waited
                delay = (1 - self._tokens) / self.rate
            time.sleep(delay)
            waited += delay

_limiters: dict[tuple[str, str], RateLimiter] = {}
_limiters_lock = threading.Lock()

def shared_limiter(vendor: str, base_url: str, rate: float, burst: int) -> RateLimiter:
    """One limiter per vendor host in this process, whatever the number of clients built."""
    with _limiters_lock:
        key = (vendor, base_url)
        if key not in _limiters:
            _limiters[key] = RateLimiter(rate, burst)
        return _limiters[key]

def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # HTTP-date form: fall back to backoff

def error_message(response: httpx.Response) -> str:
    """The vendor's own words: `message` (Coinbase, CoinAPI docs), `error` (real CoinAPI 400),
    `error_message` (FRED), or the start of the raw body."""
    text = response.text.strip()
    if not text:
        return "(empty body)"
    try:
        body = json.loads(text)
    except ValueError:
        return text[:200]
    if isinstance(body, dict):
        for key in ("message", "error", "error_message", "Error Message", "Information", "Note"):
            if body.get(key):
                return str(body[key])[:300]
    return text[:200]

@dataclass
class VendorHTTP:
    """A vendor's HTTP endpoint with its auth, rate limit and retry budget.

    `status_errors` lets a vendor map a status code to its own meaning (e.g. CoinAPI 550 -> not
    entitled); the defaults follow DESIGN.md's taxonomy.
    """

    vendor: str
    base_url: str
    rate_per_s: float = 5.0
    burst: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    timeout_s: float = 15.0
    max_attempts: int = 8
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 120.0  # a vendor asking for longer than this still gets retried at the cap
    status_errors: dict[int, type[VendorError]] = field(default_factory=dict)
    transport: httpx.BaseTransport | None = None

    def __post_init__(self):
        self.base_url = self.base_url.rstrip("/")
        register_secrets(self.secrets)
        logging.getLogger(f"btc_platform.vendors.{self.vendor}").addFilter(_redacting_filter)
        self.limiter = shared_limiter(self.vendor, self.base_url, self.rate_per_s, self.burst)
        self.requests_sent = 0
        self.retries = 0
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=self.headers,
            timeout=self.timeout_s,
            transport=self.transport,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "VendorHTTP":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def get_json(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        endpoint: str,
        partition: str | None = None,
    ) -> Any:
        """GET and decode JSON, retrying rate limits and transient failures within the budget."""
        return self.with_retries(lambda: self._get_once(path, params, endpoint=endpoint, partition=partition))

    def with_retries(self, attempt_once):
        """Call `attempt_once()` until it returns, retrying retryable VendorErrors with this vendor's
        backoff (Retry-After honoured) within `max_attempts`; other errors propagate at once."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda e: isinstance(e, VendorError) and e.retryable),
            wait=self._wait,
            stop=tenacity.stop_after_attempt(self.max_attempts),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        return retrying(attempt_once)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return min(retry_after, self.retry_after_max_s)
        return tenacity.wait_exponential_jitter(
            initial=self.backoff_initial_s, max=self.backoff_max_s
        )(state)

    def _before_sleep(self, state: tenacity.RetryCallState) -> None:
        self.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s retry %d/%d in %.2fs: %s",
            self.vendor,
            state.attempt_number,
            self.max_attempts,
            state.next_action.sleep if state.next_action else 0.0,
            exc,
        )

    def _error(self, cls: type[VendorError], message: str, *, endpoint: str, **kw) -> VendorError:
        return cls(
            redact(message, self.secrets), vendor=self.vendor, endpoint=redact(endpoint, self.secrets), **kw
        )

    def _get_once(self, path, params, *, endpoint, partition) -> Any:
        self.limiter.acquire()
        self.requests_sent += 1
        where = {"endpoint": endpoint, "partition": partition}
        try:
            response = self._client.get(path, params=params)
        except httpx.TimeoutException as e:
            raise self._error(TransientError, f"timeout ({type(e).__name__})", **where) from None
        except httpx.TransportError as e:
            raise self._error(TransientError, f"connection error ({type(e).__name__})", **where) from None
        log.debug("%s GET %s %s -> %s", self.vendor, path, redacted_params(params), response.status_code)
        status = response.status_code
        if status == 200:
            try:
                return response.json()
            except ValueError as e:
                raise self._error(
                    MalformedPayloadError, f"body is not valid JSON ({e})", http_status=status, **where
                ) from None
        cls = self.status_errors.get(status) or default_error_class(status)
        raise self._error(
            cls,
            error_message(response),
            http_status=status,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            **where,
        )

def default_error_class(status: int) -> type[VendorError]:
    if status in (401, 403):
        return NoAccessError
    if status == 429:
        return RateLimitedError
    if status >= 500:
        return TransientError
    return BadRequestError
