"""The vendor twins the sandbox serves: adding a vendor is one line here."""

from __future__ import annotations

from .alphavantage import AlphaVantage
from .coinbase import CoinbaseExchange

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
        AlphaVantage(market, rate_limit=limit("alphavantage", None)),
    ]
