"""The sandbox speaks the Coinbase Exchange candles API, deterministically, and breaks on request."""

from __future__ import annotations

import gzip
import json
import math
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from btc_platform.sandbox import FaultRule, SandboxServer
from btc_platform.sandbox.market import GeneratedMarket, ReplayMarket

REPLAY_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "candles_1m_btcusdt"
TOO_MANY = "granularity too small for the requested time range. Count of aggregations requested exceeds 300"
DAY = datetime(2024, 3, 5, tzinfo=timezone.utc)
COLS = ["t", "low", "high", "open", "close", "volume"]
MIN = timedelta(minutes=1)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def sandbox():
    # Unlimited rate so functional tests never trip the (real-time) limiter.
    with SandboxServer(rate_limit_per_s=math.inf) as s:
        yield s


@pytest.fixture
def client(sandbox):
    sandbox.clear_faults()
    with httpx.Client(base_url=sandbox.coinbase_url(), timeout=5) as c:
        yield c
    sandbox.clear_faults()


def get(client, product="BTC-USD", granularity=60, start=DAY, end=DAY + 4 * MIN, **kw):
    params = {"granularity": granularity}
    if start is not None:
        params["start"] = iso(start) if isinstance(start, datetime) else start
    if end is not None:
        params["end"] = iso(end) if isinstance(end, datetime) else end
    return client.get(f"/products/{product}/candles", params=params, **kw)


# -- pagination contract ------------------------------------------------------------------------
def test_a_day_of_minutes_in_five_pages_newest_first(client):
    seen = []
    for k in range(5):
        start = DAY + k * 300 * MIN
        end = min(start + 299 * MIN, DAY + 1439 * MIN)  # bounds are inclusive
        r = get(client, start=start, end=end)
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        rows = r.json()
        assert 0 < len(rows) <= 300
        times = [row[0] for row in rows]
        assert times == sorted(times, reverse=True) and len(set(times)) == len(times)
        assert all(isinstance(t, int) and t % 60 == 0 for t in times)
        assert start.timestamp() <= min(times) and max(times) <= end.timestamp()
        assert all(len(row) == 6 for row in rows)
        seen += times
    expected = GeneratedMarket(7).minutes("BTC-USD", DAY, DAY + timedelta(days=1))
    assert len(seen) == len(set(seen)) == len(expected)
    assert 1400 <= len(seen) <= 1440  # a few no-trade minutes are simply absent
    assert sorted(seen) == [int(t.timestamp()) for t in expected["ts"]]


def test_more_than_300_bars_is_rejected(client):
    assert get(client, start=DAY, end=DAY + 299 * MIN).status_code == 200
    r = get(client, start=DAY, end=DAY + 300 * MIN)
    assert r.status_code == 400
    assert r.json() == {"message": TOO_MANY}
    r = get(client, granularity=3600, start=DAY, end=DAY + timedelta(hours=300))
    assert r.status_code == 400 and r.json() == {"message": TOO_MANY}


@pytest.mark.parametrize("granularity", ["120", "61", "abc", "7200"])
def test_unsupported_granularity(client, granularity):
    r = get(client, granularity=granularity)
    assert r.status_code == 400
    assert r.json() == {"message": "Unsupported granularity"}


def test_unknown_product_and_path(client):
    r = get(client, product="DOGE-USD")
    assert r.status_code == 404 and r.json() == {"message": "NotFound"}
    r = client.get("/products/BTC-USD/trades")
    assert r.status_code == 404 and r.json() == {"message": "NotFound"}


def test_listing_dates_and_future(client):
    before = datetime(2021, 5, 31, 20, tzinfo=timezone.utc)
    assert get(client, product="SOL-USD", start=before, end=before + 200 * MIN).json() == []
    assert get(client, product="BTC-USD", start=datetime(2018, 11, 9, tzinfo=timezone.utc),
               end=datetime(2018, 11, 9, 4, tzinfo=timezone.utc)).json() == []
    listed = datetime(2021, 6, 1, tzinfo=timezone.utc)
    rows = get(client, product="SOL-USD", start=listed - 100 * MIN, end=listed + 99 * MIN).json()
    assert rows and min(r[0] for r in rows) == listed.timestamp()  # nothing before the listing

    now = datetime.now(timezone.utc)
    rows = get(client, start=now - 60 * MIN, end=now + 200 * MIN).json()
    assert rows and max(r[0] for r in rows) <= now.timestamp()


def test_missing_bounds_return_latest_300(client):
    rows = client.get("/products/ETH-USD/candles", params={"granularity": 60}).json()
    assert 280 <= len(rows) <= 300
    assert time.time() - rows[0][0] < 300  # newest first, up to now


def test_time_formats_are_equivalent(client):
    end = DAY + 9 * MIN
    bodies = {
        get(client, start=s, end=e).content
        for s, e in [
            (iso(DAY), iso(end)),
            ("2024-03-05T00:00:00+00:00", "2024-03-05T00:09:00+00:00"),
            ("2024-03-05T00:00:00", "2024-03-05T00:09:00"),
            (str(int(DAY.timestamp())), str(int(end.timestamp()))),
        ]
    }
    assert len(bodies) == 1


def test_hourly_bars_aggregate_the_minutes(client):
    hourly = get(client, granularity=3600, start=DAY, end=DAY + timedelta(hours=11)).json()
    assert len(hourly) == 12 and hourly[0][0] > hourly[-1][0]
    minutes = []
    for k in range(3):  # 720 minutes in pages of <= 300
        start = DAY + k * 300 * MIN
        minutes += get(client, start=start, end=min(start + 299 * MIN, DAY + 719 * MIN)).json()
    df = pd.DataFrame(minutes, columns=COLS).sort_values("t")
    mine = df.groupby(df["t"] // 3600 * 3600).agg(
        low=("low", "min"), high=("high", "max"), open=("open", "first"),
        close=("close", "last"), volume=("volume", "sum"),
    )
    got = pd.DataFrame(hourly, columns=COLS).set_index("t").sort_index()
    assert list(got.index) == list(mine.index)
    ohlc = ["low", "high", "open", "close"]
    pd.testing.assert_frame_equal(got[ohlc], mine[ohlc], check_names=False)
    np.testing.assert_allclose(got["volume"], mine["volume"], rtol=1e-9)


def test_concurrent_pages_match_sequential(sandbox, client):
    starts = [DAY + k * 300 * MIN for k in range(8)]
    sequential = [get(client, start=t, end=t + 299 * MIN).content for t in starts]

    def fetch(t):
        with httpx.Client(base_url=sandbox.coinbase_url(), timeout=10) as c:
            return get(c, start=t, end=t + 299 * MIN).content

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(fetch, starts)) == sequential


# -- determinism ----------------------------------------------------------------------------------
def test_same_request_same_bytes_across_servers(client):
    a, b = get(client, start=DAY, end=DAY + 299 * MIN), get(client, start=DAY, end=DAY + 299 * MIN)
    assert a.content == b.content
    with SandboxServer(rate_limit_per_s=math.inf) as other, httpx.Client(base_url=other.coinbase_url()) as c2:
        assert get(c2, start=DAY, end=DAY + 299 * MIN).content == a.content
    with SandboxServer(rate_limit_per_s=math.inf, seed=8) as other, \
            httpx.Client(base_url=other.coinbase_url()) as c3:
        assert get(c3, start=DAY, end=DAY + 299 * MIN).content != a.content


def test_days_join_and_random_access():
    joined = 0
    for d in range(6):
        day = DAY + timedelta(days=d)
        fresh = GeneratedMarket(7)  # each day on its own: no earlier day generated first
        prev = fresh.minutes("BTC-USD", day - MIN, day)
        nxt = GeneratedMarket(7).minutes("BTC-USD", day, day + MIN)
        if len(prev) and len(nxt):
            assert nxt["open"].iloc[0] == prev["close"].iloc[0]
            joined += 1
    assert joined >= 4
    m = GeneratedMarket(7)
    m.minutes("BTC-USD", DAY - timedelta(days=3), DAY)  # warm with earlier days
    pd.testing.assert_frame_equal(m.minutes("BTC-USD", DAY, DAY + timedelta(days=1)),
                                  GeneratedMarket(7).minutes("BTC-USD", DAY, DAY + timedelta(days=1)))


# -- realism --------------------------------------------------------------------------------------
@pytest.mark.parametrize("symbol,vol,price_range,day", [
    ("BTC-USD", 0.60, (1_000, 500_000), DAY),
    ("ETH-USD", 0.75, (20, 50_000), DAY),
    ("SOL-USD", 1.00, (1, 5_000), DAY),
    ("BTC-USD", 0.60, (5_000, 8_000), datetime(2018, 11, 10, tzinfo=timezone.utc)),
])
def test_minutes_are_realistic(symbol, vol, price_range, day):
    df = GeneratedMarket(7).minutes(symbol, day, day + timedelta(days=1))
    assert list(df.columns) == ["ts", "open", "high", "low", "close", "volume"]
    assert str(df["ts"].dt.tz) == "UTC"
    assert 1300 < len(df) < 1440
    target = vol / math.sqrt(525_600)
    std = np.log(df["close"] / df["open"]).std()
    assert target / 2 < std < target * 2
    assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()
    assert (df["low"] <= df[["open", "close"]].min(axis=1)).all()
    assert (df[["open", "high", "low", "close", "volume"]] > 0).all().all()
    consecutive = df["ts"].diff() == pd.Timedelta(minutes=1)
    assert (df["open"][consecutive] == df["close"].shift()[consecutive]).all()
    assert price_range[0] < df["close"].median() < price_range[1]


# -- replay ---------------------------------------------------------------------------------------
@pytest.mark.skipif(not REPLAY_DIR.is_dir(), reason=f"real Binance klines not present at {REPLAY_DIR}")
def test_replay_serves_the_real_csv_values():
    with SandboxServer(rate_limit_per_s=math.inf, replay={"BTC-USD": REPLAY_DIR}) as s, \
            httpx.Client(base_url=s.coinbase_url()) as c:
        start = datetime(2024, 1, 1, tzinfo=timezone.utc)
        rows = get(c, start=start, end=start + 2 * MIN).json()
        # 2024-01-01 00:00 kline: open 42283.58, high 42298.62, low 42261.02, close 42298.61, vol 35.92724
        assert rows[-1] == [1704067200, 42261.02, 42298.62, 42283.58, 42298.61, 35.92724]
        assert [r[0] for r in rows] == [1704067320, 1704067260, 1704067200]
        # Across a month boundary (two files) and outside the files' range.
        edge = datetime(2024, 2, 1, tzinfo=timezone.utc)
        assert len(get(c, start=edge - 5 * MIN, end=edge + 4 * MIN).json()) == 10
        assert get(c, start=datetime(2023, 12, 31, 20, tzinfo=timezone.utc),
                   end=datetime(2023, 12, 31, 23, 59, tzinfo=timezone.utc)).json() == []
        assert get(c, product="ETH-USD", start=start, end=start + 2 * MIN).json()  # still generated


def test_replay_drops_zero_trade_minutes(tmp_path):
    lines = [
        "1704067200000,10.0,11.0,9.0,10.5,3.0,1704067259999,30.0,5,1.0,10.0,0",
        "1704067260000,10.5,10.5,10.5,10.5,0.0,1704067319999,0.0,0,0.0,0.0,0",
        "1704067320000,10.5,12.0,10.0,11.0,2.0,1704067379999,22.0,4,1.0,11.0,0",
    ]
    with gzip.open(tmp_path / "XYZUSDT-1m-2024-01.csv.gz", "wt") as f:
        f.write("\n".join(lines) + "\n")
    df = ReplayMarket(tmp_path).minutes("XYZ-USD", "2024-01-01", "2024-01-02")
    assert [int(t.timestamp()) for t in df["ts"]] == [1704067200, 1704067320]
    assert df["open"].tolist() == [10.0, 10.5]


# -- faults ---------------------------------------------------------------------------------------
def test_fault_429_with_and_without_retry_after(sandbox, client):
    sandbox.set_faults([FaultRule("429", retry_after=3, count=1), FaultRule("429", count=1)])
    r = get(client)
    assert r.status_code == 429 and r.headers["retry-after"] == "3"
    assert r.json() == {"message": "Public rate limit exceeded"}
    r = get(client)
    assert r.status_code == 429 and "retry-after" not in r.headers
    assert get(client).status_code == 200


@pytest.mark.parametrize("kind,status", [("500", 500), ("502", 502), ("503", 503)])
def test_fault_5xx(sandbox, client, kind, status):
    sandbox.set_faults([FaultRule(kind)])
    r = get(client)
    assert r.status_code == status and "message" in r.json()


def test_fault_bodies(sandbox, client):
    good = get(client).content
    sandbox.set_faults([FaultRule("empty_500", count=1), FaultRule("malformed", count=1),
                        FaultRule("truncated", count=1), FaultRule("wrong_shape", count=1),
                        FaultRule("duplicate_rows", count=1)])
    r = get(client)
    assert r.status_code == 500 and r.content == b""
    r = get(client)
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        r.json()
    r = get(client)
    assert r.status_code == 200 and good.startswith(r.content) and len(r.content) < len(good)
    with pytest.raises(json.JSONDecodeError):
        r.json()
    r = get(client)
    assert r.status_code == 200 and r.json() == [[1, 2, 3]]
    dup = get(client).json()
    rows = json.loads(good)
    assert len(dup) == 2 * len(rows)
    assert sorted(map(tuple, dup)) == sorted(map(tuple, rows + rows))
    assert dup != sorted(dup, key=lambda row: -row[0])  # out of order
    assert get(client).content == good


def test_fault_reset_and_timeout(sandbox, client):
    sandbox.set_faults([FaultRule("reset", count=1)])
    with pytest.raises(httpx.TransportError):
        get(client)
    assert get(client).status_code == 200

    sandbox.set_faults([FaultRule("timeout", delay_s=1.0, count=1), FaultRule("timeout", delay_s=0.2)])
    with pytest.raises(httpx.ReadTimeout):
        get(client, timeout=0.3)
    t0 = time.monotonic()
    r = get(client)
    assert r.status_code == 200 and r.json() and time.monotonic() - t0 >= 0.2


def test_count_skip_and_targeting(sandbox, client):
    sandbox.set_faults([FaultRule("500", count=2, skip=1)])
    assert [get(client).status_code for _ in range(5)] == [200, 500, 500, 200, 200]

    sandbox.set_faults([FaultRule("503", path_regex="ETH-USD"), FaultRule("502", vendor="coinapi")])
    assert get(client, product="ETH-USD").status_code == 503
    assert get(client, product="BTC-USD").status_code == 200
    # The regex sees the query string too, so one page can be targeted.
    sandbox.set_faults([FaultRule("500", path_regex=r"start=2024-03-05T00(%3A|:)05")])
    assert get(client).status_code == 200
    assert get(client, start=DAY + 5 * MIN, end=DAY + 9 * MIN).status_code == 500


def test_control_endpoint_switches_faults_and_logs(sandbox, client):
    ctl = httpx.Client(base_url=sandbox.url, timeout=5)
    plan = [{"kind": "503", "count": 1}, {"kind": "429", "retry_after": 1.5, "count": 1}]
    r = ctl.post("/_sandbox/faults", json=plan)
    assert r.status_code == 200 and len(r.json()["rules"]) == 2
    assert get(client).status_code == 503
    r = get(client)
    assert r.status_code == 429 and r.headers["retry-after"] == "1.5"
    assert get(client).status_code == 200

    ctl.post("/_sandbox/faults", json=[{"kind": "500"}])
    assert get(client).status_code == 500
    assert ctl.delete("/_sandbox/faults").status_code == 200
    assert get(client).status_code == 200
    assert ctl.post("/_sandbox/faults", json=[{"kind": "teapot"}]).status_code == 400

    log = ctl.get("/_sandbox/requests").json()
    assert [e["status"] for e in log[-2:]] == [500, 200]
    last = log[-1]
    assert last["method"] == "GET" and last["path"] == "/coinbase/products/BTC-USD/candles"
    assert "granularity=60" in last["query"] and last["status"] == 200 and isinstance(last["t"], float)
    assert sandbox.request_log[-1]["path"] == last["path"]
    assert not any(e["path"].startswith("/_sandbox") for e in log)
    ctl.close()


# -- rate limit -----------------------------------------------------------------------------------
def test_rate_limiter_429s_a_burst_but_not_a_paced_client():
    with SandboxServer() as s, httpx.Client(base_url=s.coinbase_url(), timeout=5) as c:
        responses = [get(c) for _ in range(40)]  # as fast as one client can send them
        statuses = [r.status_code for r in responses]
        assert statuses[:15] == [200] * 15 and 429 in statuses  # the burst passes, then 429s
        limited = responses[statuses.index(429)]
        assert limited.json() == {"message": "Public rate limit exceeded"}
        assert "retry-after" not in limited.headers
    with SandboxServer() as s, httpx.Client(base_url=s.coinbase_url(), timeout=5) as c:
        statuses = []
        for _ in range(10):
            statuses.append(get(c).status_code)
            time.sleep(0.12)
        assert statuses == [200] * 10


# -- process entry point --------------------------------------------------------------------------
def test_main_prints_url_and_stops_on_sigterm(tmp_path):
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps([{"kind": "503", "count": 1}]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "btc_platform.sandbox", "--host", "127.0.0.1", "--port", "0",
         "--faults", str(faults)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("SANDBOX_URL=http://127.0.0.1:")
        url = line.split("=", 1)[1]
        with httpx.Client(base_url=f"{url}/coinbase", timeout=5) as c:
            assert get(c).status_code == 503
            assert get(c).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
