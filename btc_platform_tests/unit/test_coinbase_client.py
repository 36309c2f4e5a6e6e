"""The Coinbase candles client: windows of 300, page validation, a day fetched from the sandbox."""

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from btc_platform.sandbox import FaultRule
from btc_platform.sandbox.market import GeneratedMarket
from btc_platform.vendors import coinbase
from btc_platform.vendors.errors import MalformedPayloadError

DAY = datetime(2024, 1, 2, tzinfo=timezone.utc)
NEXT = DAY + timedelta(days=1)


def test_a_day_of_minutes_is_five_windows_of_at_most_300():
    windows = coinbase.request_windows(DAY, NEXT, 60)
    assert len(windows) == 5
    assert windows[0] == (DAY, DAY + timedelta(minutes=299))
    assert windows[-1][1] == NEXT - timedelta(minutes=1)
    covered = sum((end - start) / timedelta(minutes=1) + 1 for start, end in windows)
    assert covered == 1440
    assert all(b[0] - a[1] == timedelta(minutes=1) for a, b in zip(windows, windows[1:]))


def test_unsupported_granularity_is_refused_before_any_request():
    with pytest.raises(ValueError, match="granularity 61"):
        coinbase.request_windows(DAY, NEXT, 61)


@pytest.mark.parametrize(
    "payload, why",
    [
        ({"message": "oops"}, "expected a JSON array"),
        ([[1, 2, 3]], "candle rows must be"),
        ([[int(DAY.timestamp()), "a", 1, 1, 1, 1]], "non-numeric"),
        # e.g. a page that repeats the previous window's rows
        ([[int(DAY.timestamp()) - 60, 1, 1, 1, 1, 1]], "outside the requested window"),
        ([[int(DAY.timestamp()) + 30, 1, 1, 1, 1, 1]], "not aligned"),
    ],
)
def test_malformed_pages_are_refused_with_the_reason(payload, why):
    with pytest.raises(MalformedPayloadError, match=why) as err:
        coinbase.parse_candles(payload, granularity=60, window=(DAY, DAY + timedelta(minutes=299)),
                               partition="2024-01-02|BTC-USD")
    assert "coinbase /products/{product_id}/candles (partition 2024-01-02|BTC-USD)" in str(err.value)


def fetch(sandbox, symbol="BTC-USD", day=DAY):
    with coinbase.make_http(sandbox.coinbase_url()) as http:
        return coinbase.fetch_candles(http, symbol, day, day + timedelta(days=1), partition=f"{day:%F}|{symbol}",
                                      ingested_at=datetime(2025, 1, 1, tzinfo=timezone.utc))


def test_a_day_from_the_sandbox_equals_the_market_oldest_first(clean_sandbox):
    got = fetch(clean_sandbox)
    expected = GeneratedMarket(seed=7).minutes("BTC-USD", pd.Timestamp(DAY), pd.Timestamp(NEXT))
    # Pages with no-trade minutes are short: each is asked once more, and the answers agree.
    assert got.pages == 5 and got.requests == 5 + got.short_pages and got.short_pages_recovered == 0
    assert list(got.frame.columns) == coinbase.CANDLE_COLUMNS
    assert got.frame["ts"].is_monotonic_increasing and got.frame["ts"].is_unique
    assert 1380 < len(got.frame) < 1440  # minutes without trades are absent, not invented
    merged = got.frame.merge(expected, on="ts", suffixes=("", "_market"))
    assert len(merged) == len(expected) == len(got.frame)
    for col in ("open", "high", "low", "close", "volume"):
        np.testing.assert_allclose(merged[col], merged[f"{col}_market"], rtol=1e-12)
    assert set(got.frame["source"]) == {"coinbase"}


def test_duplicate_and_shuffled_rows_collapse_to_the_clean_answer(clean_sandbox):
    clean = fetch(clean_sandbox).frame
    clean_sandbox.set_faults([FaultRule("duplicate_rows", vendor="coinbase", count=2)])
    assert fetch(clean_sandbox).frame.equals(clean)


def test_a_wrong_shaped_page_fails_the_whole_fetch(clean_sandbox):
    """One bad page (the second, wrong again when fetched once more) fails the day: no partial day is
    returned. A page wrong only once is fetched again and kept (test_retry_policy.py)."""
    clean_sandbox.set_faults([FaultRule("wrong_shape", vendor="coinbase", skip=1, count=2)])
    with pytest.raises(MalformedPayloadError, match="candle rows must be"):
        fetch(clean_sandbox)


def test_before_listing_the_day_is_empty(clean_sandbox):
    got = fetch(clean_sandbox, "SOL-USD", datetime(2021, 5, 1, tzinfo=timezone.utc))
    assert got.frame.empty and list(got.frame.columns) == coinbase.CANDLE_COLUMNS
