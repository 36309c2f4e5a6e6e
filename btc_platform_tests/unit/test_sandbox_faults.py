"""The sandbox's transport and completeness faults, seen from a plain HTTP client: what each sends on
the wire, and seeded probabilistic rules that replay the same storm."""

import gzip
import json
import socket
import time
import zlib

import httpx
import pytest

from btc_platform.sandbox import FaultRule
from btc_platform.sandbox.faults import FaultPlan
from btc_platform.sandbox.registry import SANDBOX_KEYS

CANDLES = "/products/BTC-USD/candles"
CANDLE_PARAMS = {"granularity": 60, "start": "2024-03-05T00:00:00Z", "end": "2024-03-05T00:09:00Z"}
FRED_OBS = "/fred/series/observations"
FRED_PARAMS = {"series_id": "DGS10", "api_key": SANDBOX_KEYS["fred"], "file_type": "json",
               "observation_start": "2024-01-01", "observation_end": "2024-01-31"}


@pytest.fixture
def coinbase(clean_sandbox):
    with httpx.Client(base_url=clean_sandbox.coinbase_url(), timeout=5) as c:
        yield c


def test_html_200_is_an_html_error_page(clean_sandbox, coinbase):
    clean_sandbox.set_faults([FaultRule("html_200", count=1)])
    r = coinbase.get(CANDLES, params=CANDLE_PARAMS)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert b"<title>502 Bad Gateway</title>" in r.content


def test_gzip_corrupt_announces_gzip_and_cannot_be_inflated(clean_sandbox, coinbase):
    good = coinbase.get(CANDLES, params=CANDLE_PARAMS).content
    clean_sandbox.set_faults([FaultRule("gzip_corrupt", count=1)])
    with coinbase.stream("GET", CANDLES, params=CANDLE_PARAMS) as r:
        raw = b"".join(r.iter_raw())
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert raw[:2] == b"\x1f\x8b" and raw != gzip.compress(good, mtime=0)
    with pytest.raises(zlib.error):
        zlib.decompress(raw, 31)


def test_short_page_drops_the_last_half_of_a_list(clean_sandbox, coinbase):
    rows = coinbase.get(CANDLES, params=CANDLE_PARAMS).json()
    clean_sandbox.set_faults([FaultRule("short_page", count=1)])
    short = coinbase.get(CANDLES, params=CANDLE_PARAMS).json()
    assert len(rows) >= 4 and short == rows[: len(rows) // 2]


def test_short_page_drops_the_last_half_of_a_dicts_rows(clean_sandbox):
    with httpx.Client(base_url=clean_sandbox.vendor_url("fred"), timeout=5) as fred:
        full = fred.get(FRED_OBS, params=FRED_PARAMS).json()
        clean_sandbox.set_faults([FaultRule("short_page", vendor="fred", count=1)])
        short = fred.get(FRED_OBS, params=FRED_PARAMS).json()
    n = len(full["observations"])
    assert n >= 4 and short["observations"] == full["observations"][: n // 2]
    assert {k: v for k, v in short.items() if k != "observations"} == \
        {k: v for k, v in full.items() if k != "observations"}  # the envelope (count) still says the full size


def test_trickle_sends_the_real_body_slowly(clean_sandbox, coinbase):
    good = coinbase.get(CANDLES, params=CANDLE_PARAMS).content
    clean_sandbox.set_faults([FaultRule("trickle", delay_s=1.0, count=1)])
    started = time.monotonic()
    r = coinbase.get(CANDLES, params=CANDLE_PARAMS, timeout=0.5)  # no single read waits 0.5 s
    assert r.content == good and time.monotonic() - started >= 0.9


def test_drop_mid_body_closes_the_connection_short_of_its_length(clean_sandbox):
    clean_sandbox.set_faults([FaultRule("drop_mid_body", count=1)])
    host, port = clean_sandbox.host, clean_sandbox.port
    query = "&".join(f"{k}={v}" for k, v in CANDLE_PARAMS.items())
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(f"GET /coinbase{CANDLES}?{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    assert head.startswith(b"HTTP/1.1 200") and 0 < len(body) < length


def test_probability_rules_replay_the_same_storm_for_a_seed():
    def storm(seed):
        plan = FaultPlan([FaultRule("500", probability=0.3)], seed=seed)
        return [plan.pick("coinbase", "/x") is not None for _ in range(400)]

    a = storm(1)
    assert a == storm(1) and a != storm(2)
    assert 0.2 < sum(a) / len(a) < 0.4


def test_probability_is_validated():
    with pytest.raises(ValueError, match="probability"):
        FaultRule("500", probability=1.5)


def test_the_control_plane_takes_a_seeded_plan(clean_sandbox):
    with httpx.Client(base_url=clean_sandbox.url, timeout=5) as ctl:
        r = ctl.post("/_sandbox/faults", json={"rules": [{"kind": "trickle", "probability": 0.5}], "seed": 3})
    assert r.status_code == 200
    assert r.json()["rules"][0]["kind"] == "trickle" and r.json()["rules"][0]["probability"] == 0.5
    assert json.loads(json.dumps(clean_sandbox.faults.describe()))[0]["seen"] == 0
