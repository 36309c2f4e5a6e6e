"""The HTTP core every vendor client shares.

httpx for transport, tenacity for retries (exponential backoff with jitter, `Retry-After` honoured,
an attempt cap and a time budget per request), a token-bucket rate limiter per vendor, the error
taxonomy of `errors.py`, and redaction so that no key reaches a log record or an error message.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import tenacity

from btc_platform.vendors.errors import (
    BadRequestError,
    ConfigurationError,
    CorruptBodyError,
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

# `api_key=...` in a URL, whatever its value (a wrong key is no less a secret), also inside a
# percent-encoded URL (`%26api_key%3D...`, e.g. a redirect target carried in a query).
_SECRET_QUERY = re.compile(
    r"(?i)((?:[?&]|%26|%3F)(?:" + "|".join(re.escape(n) for n in sorted(SECRET_PARAM_NAMES))
    + r")(?:=|%3D))[^&\s\"'#%]*"
)
_secrets: set[str] = set()


def scrub(text: str) -> str:
    """`text` without any registered secret value or credential query parameter value."""
    return _SECRET_QUERY.sub(r"\1***", redact(text, tuple(_secrets)))


def _scrub_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a broken record is not ours to fix
        return
    clean = scrub(message)
    if clean != message:
        record.msg, record.args = clean, ()
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        if scrub(text) != text:  # handlers print exc_text when it is set
            record.exc_text = scrub(text)


def _install_record_scrubber() -> None:
    """Scrub every log record where it is made, whatever logger makes it: httpx's request line,
    httpcore's header dumps (a redirect's `Location` carries FRED's `api_key`), our own loggers,
    and so every handler after them (stderr, compute logs, Dagster's event log). A filter would
    have to sit on each logger, and httpcore logs from a new child logger per module."""
    current = logging.getLogRecordFactory()
    if getattr(current, "scrubs_secrets", False):
        return

    def factory(*args, **kwargs):
        record = current(*args, **kwargs)
        _scrub_record(record)
        return record

    factory.scrubs_secrets = True
    logging.setLogRecordFactory(factory)


_install_record_scrubber()


def register_secrets(secrets) -> None:
    _secrets.update(s for s in secrets if s)


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

def error_message(response: httpx.Response | str | bytes) -> str:
    """The vendor's own words: `message` (Coinbase, CoinAPI docs), `error` (real CoinAPI 400),
    `error_message` (FRED), or the start of the raw body."""
    if isinstance(response, httpx.Response):
        response = response.text
    text = (response.decode("utf-8", "replace") if isinstance(response, bytes) else response).strip()
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


def url_problem(base_url: str) -> str | None:
    """Why `base_url` cannot be requested, or None: retrying would only repeat the same failure."""
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL as e:
        return f"base URL {base_url!r} is not a valid URL ({e})"
    if url.scheme not in ("http", "https"):
        return (f"base URL {base_url!r} needs an http:// or https:// scheme"
                + (f", not {url.scheme}://" if url.scheme else ""))
    if not url.host:
        return f"base URL {base_url!r} has no host"
    return None


_HTML_START = re.compile(rb"^\s*(?:<!doctype html|<html|<head|<body|<title|<h1)", re.I)
_HTML_TITLE = re.compile(rb"<(?:title|h1)[^>]*>([^<]{1,120})<", re.I)


def _html_page(body: bytes, content_type: str) -> str | None:
    """A short description when a 200 holds an HTML page (a proxy's or CDN's error page) instead of JSON."""
    if "html" not in content_type.lower() and not _HTML_START.match(body[:200]):
        return None
    title = _HTML_TITLE.search(body[:4096])
    return f"an HTML page ({title.group(1).decode('utf-8', 'replace').strip() if title else 'no title'})"


class _DeadlineExceeded(Exception):
    def __init__(self, received: int):
        self.received = received


@dataclass
class VendorHTTP:
    """A vendor's HTTP endpoint with its auth, rate limit and retry budget.

    Each logical request gets at most `max_attempts` attempts and `budget_s` seconds, waits
    included (a `Retry-After` beyond what is left ends it at once); each attempt must have its whole
    response within `attempt_deadline_s`, as httpx's `timeout_s` bounds each read, not a body that
    trickles in. `status_errors` lets a vendor map a status code to its own meaning (e.g. CoinAPI
    550 -> not entitled); the defaults follow DESIGN.md's taxonomy.
    """

    vendor: str
    base_url: str
    rate_per_s: float = 5.0
    burst: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    timeout_s: float = 15.0
    attempt_deadline_s: float = 60.0
    budget_s: float = 300.0
    max_attempts: int = 12  # with backoff up to 30 s, the time budget is what usually ends a request
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 120.0  # a vendor asking for longer than this still gets retried at the cap
    status_errors: dict[int, type[VendorError]] = field(default_factory=dict)
    transport: httpx.BaseTransport | None = None

    def __post_init__(self):
        self.base_url = self.base_url.rstrip("/")
        register_secrets(self.secrets)
        problem = url_problem(self.base_url)
        if problem:  # fails here, before any request or retry, naming what to fix
            raise self._error(ConfigurationError, problem, endpoint="base URL")
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
        parse: Callable[[Any], Any] | None = None,
    ) -> Any:
        """GET and decode JSON, retrying rate limits and transient failures within the budget.

        `parse`, when given, turns the body into what the caller keeps, inside the same retry loop:
        a body that breaks the schema (MalformedPayloadError) is fetched once more, and the same
        break twice is final. Without it, the decoded body is returned."""

        def attempt():
            payload = self._get_once(path, params, endpoint=endpoint, partition=partition)
            return payload if parse is None else parse(payload)

        return self.with_retries(attempt)

    def with_retries(self, attempt_once):
        """Call `attempt_once()` until it returns: retryable VendorErrors are retried with backoff
        (Retry-After honoured), a schema break (MalformedPayloadError) until two answers in a row break it
        the same way, all
        within `max_attempts` and `budget_s`; other errors propagate at once."""
        last_break: list[str | None] = [None]

        def worth_retrying(e: BaseException) -> bool:
            if not isinstance(e, VendorError):
                return False
            if e.retryable:
                last_break[0] = None  # a fault in between: the next break is a first one again
                return True
            if isinstance(e, MalformedPayloadError):
                # The same break in two answers in a row is the vendor's real answer; a break, a 5xx,
                # then the same break is a faulty path twice, not a schema the vendor now sends.
                repeated = e.detail == last_break[0]
                last_break[0] = e.detail
                return not repeated
            return False

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(worth_retrying),
            wait=self._wait,
            stop=tenacity.stop_after_attempt(self.max_attempts) | tenacity.stop_before_delay(self.budget_s),
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
            scrub(redact(message, self.secrets)), vendor=self.vendor,
            endpoint=scrub(redact(endpoint, self.secrets)), **kw
        )

    def _fetch(self, path, params) -> tuple[httpx.Response, bytes]:
        """One GET, its body read whole within `attempt_deadline_s` (checked as each chunk lands)."""
        deadline = time.monotonic() + self.attempt_deadline_s
        timeout = httpx.Timeout(min(self.timeout_s, self.attempt_deadline_s))
        with self._client.stream("GET", path, params=params, timeout=timeout) as response:
            chunks, received = [], 0
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                received += len(chunk)
                if time.monotonic() > deadline:
                    raise _DeadlineExceeded(received)
        if time.monotonic() > deadline:
            raise _DeadlineExceeded(received)
        return response, b"".join(chunks)

    def _get_once(self, path, params, *, endpoint, partition) -> Any:
        self.limiter.acquire()
        self.requests_sent += 1
        where = {"endpoint": endpoint, "partition": partition}
        try:
            response, body = self._fetch(path, params)
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as e:
            raise self._error(ConfigurationError, f"the request URL is unusable ({e})", **where) from None
        except httpx.TimeoutException as e:
            raise self._error(TransientError, f"timeout ({type(e).__name__})", **where) from None
        except _DeadlineExceeded as e:
            raise self._error(
                TransientError,
                f"no whole response within {self.attempt_deadline_s:g}s ({e.received} bytes of body arrived)",
                **where,
            ) from None
        except (httpx.DecodingError, zlib.error) as e:
            raise self._error(
                CorruptBodyError, f"body could not be decoded ({type(e).__name__}: {e})", http_status=None, **where
            ) from None
        except httpx.RemoteProtocolError as e:
            raise self._error(TransientError, f"connection dropped mid-response ({e})", **where) from None
        except httpx.TransportError as e:
            raise self._error(TransientError, f"connection error ({type(e).__name__})", **where) from None
        log.debug("%s GET %s %s -> %s", self.vendor, path, redacted_params(params), response.status_code)
        status = response.status_code
        if status == 200:
            html = _html_page(body, response.headers.get("Content-Type", ""))
            if html:  # a proxy's or gateway's error page
                raise self._error(CorruptBodyError, f"body is not valid JSON but {html}", http_status=status, **where)
            try:
                return json.loads(body)
            except ValueError as e:
                raise self._error(
                    CorruptBodyError, f"body is not valid JSON ({e})", http_status=status, **where
                ) from None
        cls = self.status_errors.get(status) or default_error_class(status)
        raise self._error(
            cls,
            error_message(body),
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
