"""One error taxonomy for every vendor (DESIGN.md, "Vendor errors").

Each class carries the vendor status it maps to, so the status table and the retry policy read the
same fact. Messages name vendor, endpoint and partition and never contain a secret.
"""

from __future__ import annotations


class VendorError(Exception):
    status = "failing"
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        vendor: str,
        endpoint: str,
        partition: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
    ):
        self.vendor = vendor
        self.endpoint = endpoint
        self.partition = partition
        self.http_status = http_status
        self.retry_after = retry_after
        self.detail = message
        where = f"{vendor} {endpoint}" + (f" (partition {partition})" if partition else "")
        code = f" HTTP {http_status}" if http_status is not None else ""
        super().__init__(f"{where}:{code} {message}".strip())


class NoCredentialsError(VendorError):
    """The key is not configured: the vendor is skipped, not called."""

    status = "no_credentials"


class NoAccessError(VendorError):
    """401/403: credentials missing or rejected. Retrying cannot help."""

    status = "no_access"


class NotEntitledError(VendorError):
    """The plan lacks this endpoint or data (premium 403/404, CoinAPI 550)."""

    status = "not_entitled"


class RateLimitedError(VendorError):
    """429 or a throttle body: wait (Retry-After when given) and retry within a budget."""

    status = "rate_limited"
    retryable = True


class TransientError(VendorError):
    """5xx, timeouts, connection resets: retried with backoff."""

    status = "failing"
    retryable = True


class MalformedPayloadError(VendorError):
    """The body parses but breaks the vendor's schema. Fetched once more (a vendor or a proxy can
    glitch); the same failure twice is final: the partition fails, nothing is written."""

    status = "failing"


class CorruptBodyError(MalformedPayloadError):
    """A 200 whose body cannot be read at all: cut short, not JSON, an HTML error page, a corrupt
    gzip stream. Network or proxy trouble, so retried like a transient error within the budget;
    one that persists still fails as a malformed payload."""

    retryable = True


class BadRequestError(VendorError):
    """4xx that is our request's fault (bad parameters): a bug or bad input, not retried."""

    status = "failing"


class ConfigurationError(VendorError):
    """The client's own settings cannot work (a base URL without http(s), an invalid URL): nothing
    the vendor does will change that, so not retried."""

    status = "failing"
