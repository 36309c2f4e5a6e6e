"""The FRED client and twin: real bodies and the twin parse alike, observations equal the real series,
vintages are split by ALFRED's 2000-vintage-date cap and merged back exactly, `as_of` never looks
ahead, the error taxonomy, faults, and the key never showing up in a message or a log line."""

from __future__ import annotations

import gzip
import json
import logging
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs

import httpx
import numpy as np
import pandas as pd
import pytest

from btc_platform.sandbox import FaultRule, SandboxServer
from btc_platform.sandbox import fred as twin_mod
from btc_platform.sandbox.registry import SANDBOX_KEYS
from btc_platform.vendors import fred
from btc_platform.vendors.errors import (
    BadRequestError,
    MalformedPayloadError,
    NoAccessError,
    NotEntitledError,
    VendorError,
)
from btc_platform_tests.conftest import shared_data

KEY = SANDBOX_KEYS["fred"]
WRONG_KEY = "0123456789abcdef0123456789abcdef"
INGESTED = datetime(2025, 1, 1, tzinfo=timezone.utc)
OBS_PATH = "/fred/series/observations"
# Fast client settings: the module's own sandbox lifts FRED's 120/min limit so the suite stays quick.
FAST = {"rate_per_s": 200.0, "burst": 50, "backoff_initial_s": 0.02, "backoff_max_s": 0.1}


@pytest.fixture(scope="module")
def server():
    with SandboxServer(rate_limits={"fred": None}) as s:
        yield s


@pytest.fixture
def sandbox(server):
    server.clear_faults()
    server.grant("fred")
    server.clear_request_log()
    yield server
    server.clear_faults()
    server.grant("fred")


def http_for(sandbox, key=KEY, **kw):
    return fred.make_http(sandbox.vendor_url("fred"), key, **{**FAST, **kw})


def without_ingested(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns="ingested_at").reset_index(drop=True)


def fred_requests(sandbox, path=OBS_PATH, *, at_least: int = 0) -> list[dict]:
    """The sandbox's log of FRED requests to `path`; it logs a request once its response is out,
    so wait (briefly) until the `at_least` requests the client has finished are there."""
    deadline = time.monotonic() + 2
    while True:
        got = [e for e in sandbox.request_log if e["vendor"] == "fred" and e["path"].endswith(path)]
        if len(got) >= at_least or time.monotonic() > deadline:
            return got
        time.sleep(0.01)


def truth(sandbox, series_id: str, rt_start="1776-07-04", rt_end="9999-12-31") -> pd.DataFrame:
    """The twin's own vintage table, clipped to a real-time window: what a cap-free request returns."""
    twin = sandbox.vendors["fred"]
    t = twin.table(series_id).known(twin.today())
    lo, hi = np.datetime64(rt_start), np.datetime64(rt_end)
    end = t.end
    sel = (t.start <= hi) & (end >= lo)
    start, end = np.maximum(t.start[sel], lo), np.minimum(end[sel], hi)

    def ts(days):
        out = pd.to_datetime(np.where(days == twin_mod.REALTIME_MAX, np.datetime64("NaT"), days).astype("M8[ns]"))
        return out.tz_localize("UTC")

    return pd.DataFrame({
        "series_id": series_id,
        "date": ts(t.date[sel]),
        "value": [np.nan if v == "." else float(v) for v in t.value[sel]],
        "realtime_start": ts(start),
        "realtime_end": ts(end),
        "source": "fred",
    })


def csv_series(series_id: str) -> pd.DataFrame:
    path = shared_data("fred", f"{series_id}.csv")
    df = pd.read_csv(path, dtype={"value": "float64"})
    return pd.DataFrame({"date": pd.to_datetime(df["date"], utc=True), "value": df["value"]})


# -- contract: the real bodies and the twin's, through the same parser ---------------------------

FIXTURES = {
    "lewiskk016_cpi.json": 0,
    "lewiskk016_employment.json": 0,
    "lewiskk016_eur_usd_m.json": 1,
    "lewiskk016_fedfunds.json": 1,
    "lewiskk016_gdp.json": 0,
    "lewiskk016_usd_jpy.json.gz": 243,  # DEXJPUS
    "openbb_cassette_commercial_paper_RIFSPPAAAD30NB_body.json": 2,
    "openbb_cassette_spot_rate_HQMCB10YR_body.json": 0,
}


def load_fixture(name: str) -> dict:
    path = shared_data("fixtures", "fred", name)
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt") as f:
        return json.load(f)


def schema(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return [(c, str(t)) for c, t in frame.dtypes.items()]


@pytest.mark.parametrize("name, dots", FIXTURES.items())
def test_real_bodies_parse_with_dots_as_nan(name, dots):
    body = load_fixture(name)
    frame = fred.parse_observations(body, series_id="X", partition="p", ingested_at=INGESTED)
    assert sum(o["value"] == "." for o in body["observations"]) == dots
    assert len(frame) == len(body["observations"])
    assert int(frame["value"].isna().sum()) == dots  # "." is NaN, never 0
    assert list(frame.columns) == fred.FRAME_COLUMNS
    assert frame["date"].is_monotonic_increasing
    real = [o for o in body["observations"] if o["value"] != "."]
    np.testing.assert_allclose(frame["value"].dropna().to_numpy(), [float(o["value"]) for o in real])


def test_the_twin_answers_in_the_real_shape(sandbox):
    real = load_fixture("lewiskk016_cpi.json")
    with http_for(sandbox) as http:
        twin = http.get_json(OBS_PATH, {"series_id": "CPIAUCSL", "api_key": KEY, "file_type": "json",
                                        "observation_start": "1999-01-01"}, endpoint=OBS_PATH)
    assert set(twin) == set(real)
    assert {k: type(v) for k, v in twin.items()} == {k: type(v) for k, v in real.items()}
    assert set(twin["observations"][0]) == set(real["observations"][0])
    assert twin["realtime_start"] == twin["realtime_end"] == twin["observations"][0]["realtime_start"]
    parsed_twin = fred.parse_observations(twin, series_id="CPIAUCSL", ingested_at=INGESTED)
    parsed_real = fred.parse_observations(real, series_id="CPIAUCSL", ingested_at=INGESTED)
    assert schema(parsed_twin) == schema(parsed_real)
    # The real CSV has October 2025 missing (no CPI release that month): served as "." -> NaN
    assert int(parsed_twin["value"].isna().sum()) == sum(o["value"] == "." for o in twin["observations"])


def test_the_series_table_matches_the_twin():
    assert set(fred.SERIES) == set(twin_mod.SCHEDULES)
    assert {s: i.frequency for s, i in fred.SERIES.items()} == {s: v.freq for s, v in twin_mod.SCHEDULES.items()}
    assert fred.RATE_LIMIT_PER_S * 60 == 120 and twin_mod.Fred().rate_limit[0] * 60 == 120


# -- observations ---------------------------------------------------------------------------------

@pytest.mark.parametrize("series_id", ["DGS10", "CPIAUCSL", "GDP"])
def test_latest_observations_equal_the_real_series(sandbox, series_id):
    expected = csv_series(series_id)
    with http_for(sandbox) as http:
        got = fred.fetch_observations(http, series_id, api_key=KEY, partition=f"latest|{series_id}",
                                      ingested_at=INGESTED)
    f = got.frame
    assert got.pages == 1 and got.requests == 1
    assert list(f.columns) == fred.FRAME_COLUMNS
    assert f["date"].is_monotonic_increasing and f["date"].is_unique
    pd.testing.assert_series_equal(f["date"], expected["date"], check_names=False)
    pd.testing.assert_series_equal(f["value"], expected["value"], check_names=False)
    assert (f["realtime_start"] == f["realtime_end"]).all()  # FRED's default window: today..today
    assert set(f["source"]) == {"fred"} and (f["ingested_at"] == pd.Timestamp(INGESTED)).all()


def test_small_pages_equal_one_page(sandbox):
    with http_for(sandbox) as http:
        one = fred.fetch_observations(http, "CPIAUCSL", api_key=KEY, ingested_at=INGESTED)
        paged = fred.fetch_observations(http, "CPIAUCSL", api_key=KEY, page_limit=100, ingested_at=INGESTED)
        window = fred.fetch_observations(http, "DGS10", observation_start="2024-01-01",
                                         observation_end="2024-03-31", page_limit=25, ingested_at=INGESTED,
                                         api_key=KEY)
    assert paged.pages == -(-len(one.frame) // 100) > 1
    pd.testing.assert_frame_equal(paged.frame, one.frame)
    assert window.pages == 3
    assert window.frame["date"].min() >= pd.Timestamp("2024-01-01", tz="UTC")
    assert window.frame["date"].max() <= pd.Timestamp("2024-03-31", tz="UTC")
    offsets = [parse_qs(e["query"])["offset"][0] for e in fred_requests(sandbox, at_least=1 + paged.pages + 3)[-3:]]
    assert offsets == ["0", "25", "50"]


def test_an_empty_window_is_an_empty_frame(sandbox):
    with http_for(sandbox) as http:
        got = fred.fetch_observations(http, "GDP", observation_start="2030-01-01", api_key=KEY)
    assert got.frame.empty and list(got.frame.columns) == fred.FRAME_COLUMNS
    assert schema(got.frame) == schema(fred.parse_observations(load_fixture("lewiskk016_gdp.json"), series_id="GDP"))
    assert fred.as_of(got.frame, "2031-01-01").empty


def test_the_default_client_stays_under_freds_rate_limit():
    """FRED allows 120 requests a minute; the twin answers FRED's 429 past its bucket, and the
    default client (2 requests/s) never meets it. The bucket is small here to keep the test short."""
    with SandboxServer(rate_limits={"fred": (2.0, 2)}) as s:
        url = s.vendor_url("fred") + OBS_PATH
        params = {"series_id": "GDP", "api_key": KEY, "file_type": "json", "limit": 1}
        statuses = [httpx.get(url, params=params) for _ in range(3)]
        assert [r.status_code for r in statuses][:2] == [200, 200] and statuses[2].status_code == 429
        assert statuses[2].json() == {"error_code": 429, "error_message": "Too Many Requests.  Exceeded Rate Limit"}
        time.sleep(1.0)
        s.clear_request_log()
        with fred.make_http(s.vendor_url("fred"), KEY) as http:
            for _ in range(4):
                fred.probe(http, "observations", KEY)
            assert http.retries == 0
        deadline = time.monotonic() + 2  # the sandbox logs a request once its response is out
        while len(s.request_log) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [e["status"] for e in s.request_log] == [200] * 4


# -- vintages -------------------------------------------------------------------------------------

def test_vintage_windows_tile_the_range():
    dates = [f"2000-01-{d:02d}" for d in range(1, 31)]
    windows = fred.vintage_windows(dates, "1776-07-04", "9999-12-31", 7)
    assert windows[0] == ("1776-07-04", "2000-01-07")
    assert windows[1] == ("2000-01-08", "2000-01-14")
    assert windows[-1] == ("2000-01-29", "9999-12-31")
    assert fred.vintage_windows(dates, "2000-01-03", "2000-01-05", 7) == [("2000-01-03", "2000-01-05")]
    for max_dates in (1, 2, 7, 29, 30):
        ws = fred.vintage_windows(dates, "1999-12-31", "2000-02-01", max_dates)
        assert all(sum(s <= d <= e for d in dates) <= max_dates for s, e in ws)
        assert all(pd.Timestamp(b[0]) - pd.Timestamp(a[1]) == pd.Timedelta(days=1) for a, b in zip(ws, ws[1:]))


def assert_windows_within_cap(sandbox, series_id, cap, requests):
    twin = sandbox.vendors["fred"]
    vintage_dates = np.datetime_as_string(twin.table(series_id).known(twin.today()).vintage_dates()).tolist()
    windows = []
    log = fred_requests(sandbox, at_least=requests)
    assert len(log) == requests
    for e in log:
        q = parse_qs(e["query"])
        assert q["output_type"] == ["1"] and e["status"] == 200
        s, t = q["realtime_start"][0], q["realtime_end"][0]
        assert sum(s <= d <= t for d in vintage_dates) <= cap
        windows.append((s, t))
    return windows


def test_a_long_real_time_range_is_split_at_2000_vintage_dates_and_merged_exactly(sandbox):
    """M2SL (weekly H.6 revisions until 2021) has more than 2000 vintage dates since 1980."""
    with http_for(sandbox) as http:
        got = fred.fetch_vintages(http, "M2SL", realtime_start="1776-07-04", realtime_end="9999-12-31",
                                  api_key=KEY, partition="vintages|M2SL", ingested_at=INGESTED)
    assert got.chunks >= 2
    windows = assert_windows_within_cap(sandbox, "M2SL", 2000, got.pages)
    assert len(windows) == got.chunks and windows[0][0] == "1776-07-04" and windows[-1][1] == "9999-12-31"
    expected = truth(sandbox, "M2SL")
    pd.testing.assert_frame_equal(without_ingested(got.frame), expected)
    assert got.frame.groupby("date").size().max() > 1  # revised observations: several vintages each


@pytest.mark.parametrize("rt_start, rt_end", [("1776-07-04", "9999-12-31"), ("2000-01-01", "2010-12-31")])
def test_many_small_windows_give_the_cap_free_answer(sandbox, rt_start, rt_end):
    with http_for(sandbox) as http:
        got = fred.fetch_vintages(http, "CPIAUCSL", realtime_start=rt_start, realtime_end=rt_end,
                                  api_key=KEY, max_vintage_dates=40, ingested_at=INGESTED)
    assert got.chunks > 3
    assert_windows_within_cap(sandbox, "CPIAUCSL", 40, got.pages)
    pd.testing.assert_frame_equal(without_ingested(got.frame), truth(sandbox, "CPIAUCSL", rt_start, rt_end))


def test_the_twin_refuses_more_than_2000_vintage_dates_like_fred(sandbox):
    with http_for(sandbox) as http, pytest.raises(BadRequestError) as err:
        http.get_json(OBS_PATH, {"series_id": "M2SL", "api_key": KEY, "file_type": "json",
                                 "realtime_start": "1776-07-04", "realtime_end": "9999-12-31"}, endpoint=OBS_PATH)
    assert err.value.http_status == 400
    assert "exceeds the maximum number of vintage dates allowed (2000)" in str(err.value)
    assert "vintage dates in the specified real-time period: 1776-07-04 to 9999-12-31" in str(err.value)


def test_daily_series_are_published_next_business_day_without_revisions(sandbox):
    with http_for(sandbox) as http:
        got = fred.fetch_vintages(http, "DGS10", realtime_start="2023-01-01", observation_start="2023-01-01",
                                  observation_end="2023-12-31", api_key=KEY, ingested_at=INGESTED)
    f = got.frame
    assert f["date"].is_unique and f["realtime_end"].isna().all()
    lag = np.busday_count(f["date"].dt.strftime("%Y-%m-%d").to_numpy().astype("M8[D]"),
                          f["realtime_start"].dt.strftime("%Y-%m-%d").to_numpy().astype("M8[D]"))
    assert (lag == 1).all()


def test_the_twin_without_real_files_generates_deterministic_series_of_the_right_frequency():
    a, b = twin_mod.Fred(data_dir=None), twin_mod.Fred(data_dir=None)
    daily, monthly, quarterly = a.table("DGS10"), a.table("CPIAUCSL"), a.table("GDP")
    assert np.array_equal(daily.value, b.table("DGS10").value)
    assert np.is_busday(daily.date).all() and "." in set(daily.value)  # Jan 1 / Dec 25 missing
    days_of_month = (monthly.date - monthly.date.astype("M8[M]").astype("M8[D]")).astype(int)
    assert (days_of_month == 0).all() and len(np.unique(monthly.date)) > 500
    months = np.unique(quarterly.date).astype("M8[M]").astype(int) % 12
    assert set(months.tolist()) == {0, 3, 6, 9}
    assert (pd.Series(quarterly.date).value_counts() == 3).all()  # advance, second, third estimate


def test_the_twin_sorts_descending_and_serves_initial_releases():
    twin = twin_mod.Fred()
    q = {"series_id": ["GDP"], "file_type": ["json"], "realtime_start": ["2020-01-01"],
         "realtime_end": ["9999-12-31"], "observation_start": ["2022-01-01"]}
    desc = twin.observations({**q, "sort_order": ["desc"], "limit": ["5"]})
    dates = [o["date"] for o in desc["observations"]]
    assert dates == sorted(dates, reverse=True) and len(set(dates)) > 1  # newest observation first
    assert desc["count"] > 5 and desc["limit"] == 5
    first = twin.observations({**q, "output_type": ["4"]})["observations"]
    assert len({o["date"] for o in first}) == len(first)
    every = twin.observations(q)["observations"]
    for o in first:
        earliest = min((v for v in every if v["date"] == o["date"]), key=lambda v: v["realtime_start"])
        assert o == earliest
    status, body, _ = twin.handle(type("R", (), {"method": "GET", "path": OBS_PATH,
                                                 "query": {**q, "realtime_start": ["2024-13-01"]}})())
    assert status == 400 and body["error_message"].startswith("Bad Request.  Variable realtime_start")


# -- as_of ----------------------------------------------------------------------------------------

def _ts(s):
    return pd.Timestamp(s, tz="UTC") if s else pd.NaT


def test_as_of_picks_the_vintage_current_at_that_time():
    rows = [  # (date, value, realtime_start, realtime_end)
        ("2024-01-01", 1.0, "2024-02-13", "2024-03-12"),
        ("2024-01-01", 1.5, "2024-03-13", None),
        ("2024-02-01", np.nan, "2024-03-13", None),
    ]
    frame = pd.DataFrame({
        "series_id": "CPIAUCSL",
        "date": [_ts(r[0]) for r in rows],
        "value": [r[1] for r in rows],
        "realtime_start": [_ts(r[2]) for r in rows],
        "realtime_end": pd.Series([_ts(r[3]) for r in rows], dtype="datetime64[ns, UTC]"),
        "source": "fred",
        "ingested_at": _ts("2025-01-01"),
    })
    assert fred.as_of(frame, "2024-02-12T23:59:59Z").empty  # not published yet
    first = fred.as_of(frame, pd.Timestamp("2024-02-13", tz="UTC"))
    assert first["value"].tolist() == [1.0]
    late = fred.as_of(frame, "2024-03-12T23:00:00Z")  # realtime_end is inclusive through that day
    assert late["value"].tolist() == [1.0]
    revised = fred.as_of(frame, "2024-03-13")  # naive means UTC
    assert revised["date"].tolist() == [_ts("2024-01-01"), _ts("2024-02-01")]
    assert revised["value"].iloc[0] == 1.5 and np.isnan(revised["value"].iloc[1])
    assert fred.as_of(frame, "2200-01-01")["value"].iloc[0] == 1.5


@pytest.mark.parametrize("series_id", ["CPIAUCSL", "GDP", "UNRATE"])
def test_as_of_never_looks_ahead_and_ends_at_the_latest_values(sandbox, series_id):
    with http_for(sandbox) as http:
        vintages = fred.fetch_vintages(http, series_id, api_key=KEY, ingested_at=INGESTED).frame
        latest = fred.fetch_observations(http, series_id, api_key=KEY, ingested_at=INGESTED).frame
    assert (vintages.groupby("date").size() > 1).any()  # something for as_of to do
    twin = sandbox.vendors["fred"]
    t = twin.table(series_id).known(twin.today())
    rng = np.random.default_rng(3)
    ats = pd.to_datetime(rng.integers(pd.Timestamp("1980-01-01").value, pd.Timestamp("2026-02-01").value, 40),
                         utc=True)
    for at in ats:
        known = fred.as_of(vintages, at)
        assert (known["realtime_start"] <= at).all()
        assert known["date"].is_unique and (known["date"] < at).all()
        # independently: per date, the value of the latest release on or before `at`
        day = np.datetime64(at.tz_convert(None).floor("D"), "D")
        ok = t.start <= day
        exp = pd.DataFrame({"date": t.date[ok], "start": t.start[ok], "value": t.value[ok]})
        exp = exp.sort_values(["date", "start"]).drop_duplicates("date", keep="last")
        assert known["date"].dt.strftime("%Y-%m-%d").tolist() == np.datetime_as_string(exp["date"].to_numpy(), unit="D").tolist()
        np.testing.assert_array_equal(known["value"].to_numpy(),
                                      [np.nan if v == "." else float(v) for v in exp["value"]])
    now = fred.as_of(vintages, pd.Timestamp.now(tz="UTC"))
    pd.testing.assert_series_equal(now["value"], latest["value"], check_names=False)
    pd.testing.assert_series_equal(now["date"], latest["date"], check_names=False)


# -- errors and faults ----------------------------------------------------------------------------

def test_a_wrong_or_missing_key_is_no_access(sandbox):
    with http_for(sandbox, key=WRONG_KEY) as http, pytest.raises(NoAccessError) as err:
        fred.fetch_observations(http, "DGS10", api_key=WRONG_KEY, partition="2024-01-02|DGS10")
    assert err.value.status == "no_access" and err.value.http_status == 400
    assert "api_key is not registered" in str(err.value) and "(partition 2024-01-02|DGS10)" in str(err.value)
    with http_for(sandbox, key=None) as http, pytest.raises(NoAccessError, match="api_key is not set"):
        fred.probe(http, "observations", None)
    time.sleep(0.2)
    assert len(fred_requests(sandbox, at_least=2)) == 2  # not retried


def test_bad_requests_locked_series_and_probe(sandbox):
    with http_for(sandbox) as http:
        with pytest.raises(BadRequestError, match="The series does not exist") as err:
            fred.fetch_observations(http, "NOSUCHSERIES", api_key=KEY)
        assert not isinstance(err.value, NoAccessError)
        assert fred.probe(http, "observations", KEY) == 1
        assert fred.probe(http, "vintagedates", KEY) == 1
        sandbox.deny("fred", "observations", kind="not_entitled")
        with pytest.raises(NotEntitledError) as err:
            fred.probe(http, "observations", KEY)
        assert err.value.http_status == 423 and err.value.status == "not_entitled"
        assert fred.probe(http, "vintagedates", KEY) == 1
        sandbox.grant("fred")
        sandbox.deny("fred", kind="no_access")
        with pytest.raises(NoAccessError):
            fred.probe(http, "vintagedates", KEY)
        with pytest.raises(ValueError, match="unknown FRED endpoint"):
            fred.probe(http, "series", KEY)


WINDOW = {"observation_start": "2020-01-01", "observation_end": "2024-12-31"}


def fetch_window(sandbox, **kw):
    with http_for(sandbox, **kw) as http:
        return fred.fetch_observations(http, "CPIAUCSL", api_key=KEY, partition="2024-01-02|CPIAUCSL",
                                       ingested_at=INGESTED, **WINDOW).frame


@pytest.mark.parametrize("rules", [
    [FaultRule("429", vendor="fred", count=2)],
    [FaultRule("429", vendor="fred", count=1, retry_after=0.05)],
    [FaultRule("500", vendor="fred", count=2)],
    [FaultRule("503", vendor="fred", count=1), FaultRule("empty_500", vendor="fred", count=1)],
    [FaultRule("reset", vendor="fred", count=1)],
    [FaultRule("duplicate_rows", vendor="fred", count=1)],
], ids=["429x2", "429-retry-after", "500x2", "503+empty500", "reset", "duplicate_rows"])
def test_transient_faults_give_the_same_frame(sandbox, rules):
    clean = fetch_window(sandbox)
    sandbox.set_faults(rules)
    pd.testing.assert_frame_equal(fetch_window(sandbox), clean)


@pytest.mark.parametrize("kind, why", [
    ("truncated", "not valid JSON"),
    ("malformed", "not valid JSON"),
    ("wrong_shape", "lack field"),
])
def test_broken_bodies_fail_naming_vendor_endpoint_partition(sandbox, kind, why):
    sandbox.set_faults([FaultRule(kind, vendor="fred")])
    with pytest.raises(MalformedPayloadError, match=why) as err:
        fetch_window(sandbox)
    assert str(err.value).startswith("fred /fred/series/observations (partition 2024-01-02|CPIAUCSL)")


def test_one_broken_vintage_window_fails_the_whole_fetch(sandbox):
    sandbox.set_faults([FaultRule("truncated", vendor="fred", path_regex="observations", skip=1)])
    with http_for(sandbox) as http, pytest.raises(MalformedPayloadError) as err:
        fred.fetch_vintages(http, "M2SL", api_key=KEY, partition="vintages|M2SL")
    assert err.value.endpoint == OBS_PATH and err.value.partition == "vintages|M2SL"


@pytest.mark.parametrize("payload, why", [
    ([[1, 2, 3]], "expected a JSON object"),
    ({"count": 0}, "no 'observations' list"),
    ({"error_code": 500, "error_message": "Internal Server Error"}, "error body with HTTP 200"),
    ({"count": 1, "observations": [{"date": "2024-01-02", "value": "1"}]}, r"lack field\(s\) \['realtime_start'"),
    ({"count": 1, "observations": [{"realtime_start": "2024-01-02", "realtime_end": "2024-01-02",
                                    "date": "2024-01-02", "value": "n/a"}]}, "neither a number nor"),
    ({"count": 1, "observations": [{"realtime_start": "2024-01-02", "realtime_end": "2024-01-02",
                                    "date": "2024-01-02", "value": 1.5}]}, "must be a string"),
    ({"count": 1, "observations": [{"realtime_start": "2024-01-02", "realtime_end": "2024-01-02",
                                    "date": "02/01/2024", "value": "1"}]}, "'date' is not a date"),
])
def test_malformed_bodies_are_refused_with_the_reason(payload, why):
    with pytest.raises(MalformedPayloadError, match=why) as err:
        fred.parse_observations(payload, series_id="DGS10", partition="2024-01-02|DGS10")
    assert "fred /fred/series/observations (partition 2024-01-02|DGS10)" in str(err.value)


def test_conflicting_duplicates_are_refused_and_split_periods_merge():
    def row(value, start, end):
        return {"realtime_start": start, "realtime_end": end, "date": "2024-01-01", "value": value}

    body = {"count": 3, "observations": [row("1.0", "2024-02-01", "2024-02-29"),
                                         row("1.0", "2024-03-01", "9999-12-31"),
                                         row("1.0", "2024-03-01", "9999-12-31")]}
    merged = fred.coalesce(fred.parse_observations(body, series_id="X"))
    assert len(merged) == 1 and pd.isna(merged["realtime_end"].iloc[0])
    assert merged["realtime_start"].iloc[0] == _ts("2024-02-01")
    body["observations"][2]["value"] = "2.0"
    with pytest.raises(MalformedPayloadError, match="two different values for X 2024-01-01"):
        fred.coalesce(fred.parse_observations(body, series_id="X"), partition="p")


# -- the key stays secret -------------------------------------------------------------------------

def test_the_key_never_appears_in_errors_or_logs(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    sandbox.set_faults([FaultRule("429", vendor="fred", count=1), FaultRule("500", vendor="fred", count=1)])
    with http_for(sandbox) as http:
        fred.fetch_vintages(http, "GDP", realtime_start="2020-01-01", api_key=KEY)
        # A schema break (final when it repeats: two requests), then 503s until the budget runs out.
        sandbox.set_faults([FaultRule("wrong_shape", vendor="fred", count=2),
                            FaultRule("503", vendor="fred")])
        for _ in range(2):
            try:
                fred.fetch_observations(http, "GDP", api_key=KEY, partition="p")
            except VendorError as e:
                errors.append(e)
    sandbox.clear_faults()
    for key in (KEY, WRONG_KEY):
        with http_for(sandbox, key=key, max_attempts=2) as http:
            try:
                fred.fetch_observations(http, "NOSUCHSERIES" if key == KEY else "GDP", api_key=key)
            except VendorError as e:
                errors.append(e)
    assert [type(e) for e in errors] == [MalformedPayloadError, type(errors[1]), BadRequestError, NoAccessError]
    assert errors[1].retryable  # the 503 budget ran out
    assert "api_key=***" in caplog.text  # httpx's request lines were logged, masked
    for secret in (KEY, WRONG_KEY):
        assert secret not in caplog.text
        for e in errors:
            assert secret not in str(e) and secret not in repr(e) and secret not in repr(e.args)
            assert secret not in e.endpoint and secret not in e.detail
