"""The Fear & Greed client: one parser for the documented example and the twin, the real history replayed
with its real missing days, `metadata.error` classified, faults, and the generated fallback series."""

import json
from datetime import date, datetime, timedelta, timezone

import httpx
import numpy as np
import pandas as pd
import pytest

from btc_platform.sandbox import FaultRule, SandboxServer
from btc_platform.sandbox.feargreed import FearGreed
from btc_platform.sandbox.server import Request
from btc_platform.vendors import feargreed as fg
from btc_platform.vendors.errors import (
    BadRequestError,
    MalformedPayloadError,
    RateLimitedError,
)
from btc_platform_tests.conftest import shared_data

UTC = timezone.utc
INGESTED = datetime(2025, 1, 1, tzinfo=UTC)
PARTITION = "2024-01-02"

# The example answer of alternative.me's documentation (https://alternative.me/crypto/api/).
DOC_EXAMPLE = {
    "name": "Fear and Greed Index",
    "data": [
        {"value": "40", "value_classification": "Fear", "timestamp": "1551157200", "time_until_update": "68499"}
    ],
    "metadata": {"error": None},
}


def http_for(url, **kw):
    kw.setdefault("backoff_initial_s", 0.01)
    kw.setdefault("backoff_max_s", 0.05)
    return fg.make_http(url, **kw)


def test_the_documented_example_parses_to_the_canonical_frame():
    frame = fg.parse_payload(DOC_EXAMPLE, ingested_at=INGESTED)
    assert list(frame.columns) == fg.COLUMNS
    assert frame["ts"].tolist() == [pd.Timestamp("2019-02-26", tz="UTC")]  # 05:00 UTC -> its UTC day
    assert frame["value"].dtype == "Int64" and frame["value"].tolist() == [40]
    assert frame["classification"].tolist() == ["Fear"]
    assert frame["source"].tolist() == ["alternative.me"]
    assert frame["ingested_at"].tolist() == [pd.Timestamp(INGESTED)]


def test_the_twin_answers_in_the_documented_shape():
    clock = datetime(2024, 1, 3, 6, 0, tzinfo=UTC).timestamp()
    twin = FearGreed(history_csv=None, clock=lambda: clock)
    status, body, _ = twin.handle(Request("GET", "/fng/", {}, {}, "127.0.0.1"))
    assert status == 200 and set(body) == set(DOC_EXAMPLE) and body["metadata"] == {"error": None}
    (latest,) = body["data"]  # limit defaults to 1
    assert set(latest) == set(DOC_EXAMPLE["data"][0])
    assert all(isinstance(v, str) for v in latest.values())
    assert latest["timestamp"] == str(int(datetime(2024, 1, 3, tzinfo=UTC).timestamp()))
    assert latest["time_until_update"] == str(18 * 3600)
    status, body, _ = twin.handle(Request("GET", "/fng/", {"limit": ["3"], "date_format": ["world"]}, {}, ""))
    assert [d["timestamp"] for d in body["data"]] == ["03-01-2024", "02-01-2024", "01-01-2024"]
    assert "time_until_update" not in body["data"][1]
    parsed = fg.parse_payload(body, date_format="world")
    assert parsed["ts"].dt.strftime("%F").tolist() == ["2024-01-01", "2024-01-02", "2024-01-03"]


@pytest.mark.parametrize(
    "payload, why",
    [
        ([], "expected the name/data/metadata object"),
        ({"data": {"value": "1"}, "metadata": {"error": None}}, "`data` must be a list"),
        ({"data": [{"value": "40", "timestamp": "1551157200"}]}, "lacks `value_classification`"),
        ({"data": [{"value": "forty", "value_classification": "Fear", "timestamp": "1551157200"}]},
         "not an integer"),
        ({"data": [{"value": "140", "value_classification": "Greed", "timestamp": "1551157200"}]},
         "outside 0..100"),
        ({"data": [{"value": "40", "value_classification": "Fear", "timestamp": "yesterday"}]},
         "not readable"),
        ({"data": [{"value": "40", "value_classification": "Fear", "timestamp": "1551157200"},
                   {"value": "41", "value_classification": "Fear", "timestamp": "1551157200"}]},
         "two different index values for 2019-02-26"),
    ],
)
def test_malformed_answers_name_vendor_endpoint_and_partition(payload, why):
    with pytest.raises(MalformedPayloadError, match=why) as err:
        fg.parse_payload(payload, partition=PARTITION)
    assert f"feargreed /fng/ (partition {PARTITION})" in str(err.value)


def test_metadata_error_is_a_classified_vendor_error():
    bad = {"name": "Fear and Greed Index", "data": [], "metadata": {"error": "Limit must be an integer."}}
    with pytest.raises(BadRequestError, match="Limit must be an integer"):
        fg.parse_payload(bad)
    throttled = {"data": [], "metadata": {"error": "Rate limit exceeded"}}
    answers = [throttled] + [DOC_EXAMPLE] * 3  # one item for limit=2 is short: kept once two more agree
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=answers.pop(0)))
    with http_for("https://api.alternative.me", transport=transport) as http:
        frame = fg.fetch_history(http, date(2019, 2, 26), date(2019, 2, 27), now=datetime(2019, 2, 26, tzinfo=UTC))
        assert http.retries == 1 and frame["value"].tolist() == [40]  # retried inside the budget
    assert fg.error_class("Too many requests") is RateLimitedError


# -- against the session sandbox (replays the real history when it is here) -------------------------
def test_history_window_from_the_sandbox(clean_sandbox):
    twin = clean_sandbox.vendors["feargreed"]
    days, values, classes = twin.history()
    today = int(twin.clock() // 86_400)
    last = pd.Timestamp(int(min(days[-1], today)), unit="D", tz="UTC")  # generated series: up to today
    start = last - timedelta(days=9)
    with http_for(clean_sandbox.vendor_url("feargreed")) as http:
        frame = fg.fetch_history(http, start, last + timedelta(days=1), PARTITION, ingested_at=INGESTED)
        fg.probe(http)
        with pytest.raises(BadRequestError, match="metadata.error: Limit must be an integer"):
            http.get_json(fg.ENDPOINT, {"limit": "x"}, endpoint=fg.ENDPOINT)
    expected = pd.DataFrame({"d": days, "v": values, "c": classes})
    first_day = (start - pd.Timestamp(0, tz="UTC")).days
    expected = expected[(expected["d"] >= first_day) & (expected["d"] <= first_day + 9)]
    assert frame["ts"].is_monotonic_increasing
    assert frame["value"].tolist() == expected["v"].tolist()
    assert frame["classification"].tolist() == expected["c"].tolist()


def test_transient_faults_give_the_same_frame(clean_sandbox):
    """500, 500, 429, then an answer with every item twice (shuffled): the clean frame all the same."""
    with http_for(clean_sandbox.vendor_url("feargreed")) as http:
        clean = fg.fetch_all(http, ingested_at=INGESTED)
        clean_sandbox.set_faults([FaultRule("500", vendor="feargreed", count=2),
                                  FaultRule("429", vendor="feargreed", count=1),
                                  FaultRule("duplicate_rows", vendor="feargreed", count=1)])
        pd.testing.assert_frame_equal(fg.fetch_all(http, ingested_at=INGESTED), clean)
        assert http.retries == 3


def test_a_truncated_answer_fails_naming_the_partition(clean_sandbox):
    clean_sandbox.set_faults([FaultRule("truncated", vendor="feargreed")])  # truncated every time
    with http_for(clean_sandbox.vendor_url("feargreed")) as http:
        with pytest.raises(MalformedPayloadError, match="not valid JSON") as err:
            fg.fetch_history(http, date(2024, 1, 2), date(2024, 1, 3), PARTITION)
    assert f"feargreed /fng/ (partition {PARTITION})" in str(err.value)


# -- the real history -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_csv():
    return shared_data("fear_greed", "fear_greed_index_alternative_me.csv")


@pytest.fixture(scope="module")
def replay_sandbox(real_csv):
    with SandboxServer() as server:
        server.add_vendor(FearGreed(history_csv=real_csv, rate_limit=server.vendors["feargreed"].rate_limit))
        yield server


def test_the_real_history_is_replayed_with_its_missing_days(replay_sandbox, real_csv):
    real = pd.read_csv(real_csv, parse_dates=["Date"])
    with http_for(replay_sandbox.vendor_url("feargreed")) as http:
        every = fg.fetch_all(http)
        april = fg.fetch_history(http, date(2018, 4, 10), date(2018, 4, 20), "2018-04")
        autumn = fg.fetch_history(http, date(2024, 10, 24), date(2024, 10, 29), "2024-10")
    assert len(every) == len(real) == 2942
    assert every["value"].tolist() == real["fng_value"].tolist()
    assert every["classification"].tolist() == real["fng_class"].tolist()
    assert every["ts"].dt.tz_localize(None).tolist() == real["Date"].tolist()
    known = every.set_index("ts").loc[pd.Timestamp("2018-02-02", tz="UTC")]
    assert (known["value"], known["classification"]) == (15, "Extreme Fear")
    # the real missing stretches stay missing: 2018-04-14..16 and 2024-10-26
    assert april["ts"].dt.strftime("%F").tolist() == [
        "2018-04-10", "2018-04-11", "2018-04-12", "2018-04-13", "2018-04-17", "2018-04-18", "2018-04-19"]
    assert "2024-10-26" not in set(autumn["ts"].dt.strftime("%F")) and len(autumn) == 4


def test_class_bands_match_the_real_record(real_csv):
    real = pd.read_csv(real_csv)
    assert [fg.classify(v) for v in real["fng_value"]] == real["fng_class"].tolist()


# -- the generated series (no real file) --------------------------------------------------------------
def test_generated_series_is_deterministic_complete_and_well_classified():
    clock = datetime(2025, 6, 1, 12, tzinfo=UTC).timestamp()

    def answer(seed):
        twin = FearGreed(history_csv=None, seed=seed, clock=lambda: clock)
        return twin.handle(Request("GET", "/fng/", {"limit": ["0"]}, {}, ""))[1]

    body = answer(7)
    assert json.dumps(body) == json.dumps(answer(7)) != json.dumps(answer(8))
    frame = fg.parse_payload(body)
    days = frame["ts"]
    assert days.iloc[0] == pd.Timestamp("2018-02-01", tz="UTC")
    assert days.iloc[-1] == pd.Timestamp("2025-06-01", tz="UTC")  # nothing after today
    assert (days.diff().dropna() == pd.Timedelta(days=1)).all()
    assert frame["value"].between(0, 100).all() and frame["value"].nunique() > 50
    assert [fg.classify(v) for v in frame["value"]] == frame["classification"].tolist()
    assert set(frame["classification"]) == set(fg.CLASSES)
    assert body["data"][0]["timestamp"] > body["data"][-1]["timestamp"]  # newest first
    assert np.isclose(frame["value"].astype(float).mean(), 50, atol=10)
