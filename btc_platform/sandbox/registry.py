"""The vendor twins the sandbox serves: adding a vendor is one line here."""

from __future__ import annotations

from .alphavantage import AlphaVantage
from .coinapi import CoinAPI
from .coinbase import CoinbaseExchange
from .cryptoquant import CryptoQuant
from .feargreed import FearGreed
from .fred import Fred

# Credentials the sandbox accepts, per vendor (any other value is rejected as the vendor does).
SANDBOX_KEYS = {
    "coinapi": "sandbox-coinapi-key",
    "cryptoquant": "sandbox-cryptoquant-token",
    "fred": "abcdefabcdefabcdefabcdefabcdef12",  # FRED keys are 32 lower-case alphanumerics
    "alphavantage": "SANDBOXALPHAVANTAGE",
}


def build_twins(market, replay, rate_limits: dict) -> list:
    """One twin per vendor; `rate_limits` maps a prefix to (per_s, burst) or None (unlimited)."""

    def limit(prefix, default):
        return rate_limits.get(prefix, default)

    return [
        CoinbaseExchange(market, replay, rate_limit=limit("coinbase", (10.0, 15))),
        CoinAPI(market, replay, rate_limit=limit("coinapi", (10.0, 20))),
        CryptoQuant(market, rate_limit=limit("cryptoquant", (5.0, 10))),
        FearGreed(rate_limit=limit("feargreed", (1.0, 60))),  # 60 requests per minute
        Fred(rate_limit=limit("fred", (2.0, 120))),  # 120 requests per minute
        AlphaVantage(market, rate_limit=limit("alphavantage", None)),
    ]


def vendor_env(sandbox) -> dict[str, str]:
    """Environment that points every vendor client at `sandbox`, with the keys it accepts and the
    source label its data carries (`sandbox(seed=...)`, or `replay:...` for replayed products)."""
    from btc_platform.sources import sandbox_source

    replay = {symbol: market.directory for symbol, market in sandbox.replay.items()}
    return sandbox_url_env(sandbox.url, sandbox_source(sandbox.seed, replay))


def sandbox_url_env(url: str, source: str) -> dict[str, str]:
    """The same for a sandbox serving at `url` in another process (`python -m btc_platform.sandbox`)."""
    from btc_platform.config import BASE_URL_ENV, KEY_ENV, SOURCE_ENV

    env = {var: f"{url}/{vendor}" for vendor, var in BASE_URL_ENV.items()}
    env.update({var: SANDBOX_KEYS[vendor] for vendor, var in KEY_ENV.items()})
    env[SOURCE_ENV] = source
    return env
