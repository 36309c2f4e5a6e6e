"""A short page with status 200 is asked for again before it is accepted (Coinbase and CoinAPI), and
CoinAPI pages on the time cursor: a short page no longer ends the fetch."""

from datetime import datetime, timedelta, timezone

import pandas as pd

from btc_platform.sandbox.market import GeneratedMarket
from btc_platform.sandbox.registry import SANDBOX_KEYS
from btc_platform.vendors import coinapi, coinbase

DAY = datetime(2024, 1, 2, tzinfo=timezone.utc)
NEXT = DAY + timedelta(days=1)


def candles(sandbox, symbol="BTC-USD"):
    with coinbase.make_http(sandbox.coinbase_url()) as http:
        return coinbase.fetch_candles(http, symbol, DAY, NEXT, partition=f"{DAY:%F}|{symbol}")


def spot(sandbox, days=1, page_limit=coinapi.DEFAULT_PAGE_LIMIT, symbol_id="COINBASE_SPOT_BTC_USD"):
    with coinapi.make_http(sandbox.vendor_url("coinapi"), SANDBOX_KEYS["coinapi"]) as http:
        return coinapi.fetch_ohlcv(http, symbol_id, DAY, DAY + timedelta(days=days), partition=f"{DAY:%F}|BTC-USD",
                                   page_limit=page_limit)


def test_a_dropped_coinbase_page_tail_is_fetched_again_not_written(clean_sandbox):
    clean = candles(clean_sandbox).frame
    clean_sandbox.vendors["coinbase"].short_pages(1)
    got = candles(clean_sandbox)
    # The first page lost half its candles with status 200; asked again, it came back whole.
    assert got.short_pages_recovered == 1
    pd.testing.assert_frame_equal(got.frame.drop(columns="ingested_at"), clean.drop(columns="ingested_at"))


def test_consistent_short_coinbase_pages_are_real_no_trade_minutes(clean_sandbox):
    got = candles(clean_sandbox, "THIN-USD")
    truth = GeneratedMarket(7).minutes("THIN-USD", pd.Timestamp(DAY), pd.Timestamp(NEXT))
    assert 900 < len(truth) < 1200                      # a thin market: many minutes without trades
    assert got.pages == 5 and got.short_pages == 5 and got.short_pages_recovered == 0
    assert got.requests == 10                           # each page asked twice, both answers agreed
    assert list(got.frame["ts"]) == list(truth["ts"])


def test_a_short_coinapi_page_does_not_end_pagination(clean_sandbox):
    clean = spot(clean_sandbox).frame
    assert len(clean) == 24
    clean_sandbox.vendors["coinapi"].short_pages(1)
    got = spot(clean_sandbox)
    assert list(got.frame["ts"]) == list(clean["ts"])   # 12 hours was all the old loop kept
    assert got.requests == 2


def test_coinapi_pages_on_the_time_cursor_even_when_every_page_is_short(clean_sandbox):
    clean = spot(clean_sandbox, days=2, page_limit=10).frame
    assert len(clean) == 48
    clean_sandbox.vendors["coinapi"].short_pages(100)   # every answer loses its newest half
    got = spot(clean_sandbox, days=2, page_limit=10)
    assert list(got.frame["ts"]) == list(clean["ts"])
    clean_sandbox.vendors["coinapi"].short_pages(0)


def test_coinapi_holes_in_a_thin_product_stay_holes(clean_sandbox):
    got = spot(clean_sandbox, symbol_id="COINBASE_SPOT_THIN_USD", days=2)
    truth = GeneratedMarket(7).minutes("THIN-USD", pd.Timestamp(DAY), pd.Timestamp(DAY + timedelta(days=2)))
    assert list(got.frame["ts"]) == sorted(set(truth["ts"].dt.floor("1h")))
