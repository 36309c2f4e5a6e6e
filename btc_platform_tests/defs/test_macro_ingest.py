"""Ingest assets for FRED (vintages by publication day), Alpha Vantage (within a daily request budget)
and the Fear & Greed index, materialized on the sandbox without the full definitions."""

from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest
from dagster._serdes import serialize_value

from btc_platform.defs.alphavantage.assets import (
    BUDGET_DOC,
    LOADED_DOC,
    alphavantage_daily,
    alphavantage_ref,
    covers,
    frame_from_doc,
    frame_to_doc,
    merge_answer,
    need_from,
)
from btc_platform.defs.alphavantage.assets import probe as alphavantage_probe
from btc_platform.defs.feargreed.assets import fear_greed_index, fear_greed_ref
from btc_platform.defs.fred.assets import (
    close_periods,
    fred_ref,
    fred_vintages,
    published_on,
    realtime_window,
)
from btc_platform.defs.fred.assets import probe as fred_probe
from btc_platform.defs.partitions import HISTORY_START, range_tags
from btc_platform.defs.resources import (
    AlphaVantageResource,
    FearGreedResource,
    FredResource,
    LakeResource,
)
from btc_platform.lake import Lake
from btc_platform.sandbox import SandboxServer
from btc_platform.sandbox.registry import SANDBOX_KEYS
from btc_platform.vendor_status import VendorStatusStore
from btc_platform.vendors import alphavantage, fred
from btc_platform.vendors.errors import NotEntitledError, RateLimitedError
from btc_platform_tests.conftest import shared_data

FRED_KEY, AV_KEY = SANDBOX_KEYS["fred"], SANDBOX_KEYS["alphavantage"]
COLUMNS = ["series_id", "date", "value", "realtime_start", "realtime_end", "source"]


# -- resources with fast clients (the vendors' real rates would make these tests minutes long) -------

class FastFred(FredResource):
    @contextmanager
    def http(self):
        with fred.make_http(self.base_url, self.require_key(), rate_per_s=200.0, burst=20) as http:
            yield http


class FastAlphaVantage(AlphaVantageResource):
    throttle_wait_s: float = 60.0

    @contextmanager
    def http(self):
        with alphavantage.make_http(self.base_url, self.require_key(), rate_per_s=200.0, burst=20,
                                    throttle_wait_s=self.throttle_wait_s, throttle_attempts=2) as http:
            yield http


@pytest.fixture(scope="module")
def macro_sandbox():
    with SandboxServer(rate_limits={"fred": None, "alphavantage": None, "feargreed": None}) as server:
        server.vendors["alphavantage"].configure(per_minute=None, per_day=None)
        yield server


@pytest.fixture
def sandbox(macro_sandbox):
    macro_sandbox.clear_faults()
    macro_sandbox.vendors["alphavantage"].configure(per_minute=None, per_day=None)
    yield macro_sandbox
    macro_sandbox.grant("fred")
    macro_sandbox.grant("alphavantage")
    macro_sandbox.clear_faults()


@pytest.fixture
def lake_dir(tmp_path) -> Path:
    return tmp_path / "lake"


def resources(sandbox, lake_dir, **overrides) -> dict:
    return {
        "lake": LakeResource(url=str(lake_dir)),
        "fred_api": FastFred(base_url=sandbox.vendor_url("fred"), api_key=FRED_KEY),
        "alphavantage_api": FastAlphaVantage(base_url=sandbox.vendor_url("alphavantage"), api_key=AV_KEY),
        "feargreed_api": FearGreedResource(base_url=sandbox.vendor_url("feargreed")),
        **overrides,
    }


def materialize_range(asset, first: date, last: date, res: dict, instance):
    return dg.materialize([asset], resources=res, instance=instance, tags=range_tags(first, last))


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def utc(day: date) -> pd.Timestamp:
    return pd.Timestamp(day, tz="UTC")


def materialized(result, asset) -> dict[str, dict]:
    return {m.partition: m.metadata for m in result.asset_materializations_for_node(asset.key.path[-1])}


def vendor_requests(sandbox, vendor: str) -> list[dict]:
    return [e for e in sandbox.request_log if e["vendor"] == vendor]


def norm(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame[COLUMNS].sort_values(["series_id", "date", "realtime_start"], kind="stable")
    frame = frame.reset_index(drop=True)
    for column in ("date", "realtime_start", "realtime_end"):
        frame[column] = frame[column].astype("datetime64[ns, UTC]")
    return frame


# -- pure functions -------------------------------------------------------------------------------

def test_realtime_window_starts_the_day_before_or_at_the_beginning_of_time():
    assert realtime_window(HISTORY_START, HISTORY_START + timedelta(days=2)) == (fred.REALTIME_MIN, "2018-11-12")
    assert realtime_window(date(2020, 3, 1), date(2020, 3, 31)) == ("2020-02-29", "2020-03-31")


def test_published_on_splits_by_first_publication_and_close_periods_rebuilds_them():
    t = lambda s: pd.Timestamp(s, tz="UTC")  # noqa: E731
    frame = pd.DataFrame({
        "series_id": ["GDP", "GDP", "GDP", "UNRATE"],
        "date": [t("2018-07-01"), t("2018-07-01"), t("2018-07-01"), t("2018-10-01")],
        "value": [1.0, 2.0, 3.0, 3.7],
        "realtime_start": [t("2018-10-26"), t("2018-11-11"), t("2018-11-13"), t("2018-11-02")],
        "realtime_end": [t("2018-11-10"), t("2018-11-12"), pd.NaT, pd.NaT],
        "source": "fred", "ingested_at": t("2018-12-01"),
    })
    first = published_on(frame, HISTORY_START)  # 2018-11-10: everything before, ends known by then only
    assert first["value"].tolist() == [1.0, 3.7]
    assert first["realtime_end"].isna().all()  # GDP's first print was replaced on 11-11: not known on 11-10
    assert published_on(frame, date(2018, 11, 11))["value"].tolist() == [2.0]
    assert published_on(frame, date(2018, 11, 12)).empty
    later = published_on(frame, date(2018, 11, 13))
    assert later["value"].tolist() == [3.0] and later["realtime_end"].isna().all()
    union = pd.concat([published_on(frame, d) for d in days(HISTORY_START, date(2018, 11, 13))])
    pd.testing.assert_frame_equal(norm(close_periods(union)), norm(frame))
    assert fred.as_of(union, t("2018-11-12"))["value"].tolist() == [2.0, 3.7]


def test_kept_answers_cover_plan_and_merge():
    t = lambda s: pd.Timestamp(s, tz="UTC")  # noqa: E731
    full = {"first": "2018-01-02", "last": "2025-01-10", "complete": True, "fetched_at": "2025-01-11T01:00:00+00:00"}
    assert covers(full, t("2019-01-01"), t("2019-02-01"))
    assert not covers(full, t("2025-01-09"), t("2025-01-10"))  # fetched too soon after the window: ask again
    assert not covers(None, t("2019-01-01"), t("2019-02-01"))
    compact = {**full, "first": "2024-08-01", "complete": False}
    assert not covers(compact, t("2019-01-01"), t("2019-02-01"))
    assert need_from(None, t("2025-01-01")) is None  # first load: full
    assert need_from(full, t("2019-01-01")) == date(2025, 1, 10)  # extend forward
    assert need_from(compact, t("2019-01-01")) == date(2019, 1, 1)  # before what is kept

    def answer(first_day, n, outputsize, value):
        ts = pd.date_range(first_day, periods=n, freq="D", tz="UTC").astype("datetime64[ns, UTC]")
        frame = pd.DataFrame({"ts": ts, "series": "SPY", "function": "TIME_SERIES_DAILY", "open": value,
                              "high": value, "low": value, "close": value, "volume": 1.0, "value": value,
                              "source": "alphavantage", "ingested_at": t("2025-01-11")})
        frame["ingested_at"] = frame["ingested_at"].astype("datetime64[ns, UTC]")  # as the client's frame
        return alphavantage.Fetch(frame, 1, outputsize, ts[0], ts[-1])

    now = t("2025-01-11T01:00")
    kept, state = merge_answer(None, None, answer("2025-01-01", 5, "full", 1.0), now)
    assert state["complete"] and state["first"] == "2025-01-01" and state["last"] == "2025-01-05"
    kept, state = merge_answer(kept, state, answer("2025-01-04", 4, "compact", 2.0), now)
    assert state["complete"] and len(kept) == 7 and kept["value"].tolist() == [1.0] * 3 + [2.0] * 4
    gap, gap_state = merge_answer(kept, state, answer("2025-03-01", 2, "compact", 3.0), now)
    assert not gap_state["complete"] and len(gap) == 2  # a hole would be hidden: start over
    back = frame_from_doc(frame_to_doc(kept))
    pd.testing.assert_frame_equal(back, kept)


# -- FRED -----------------------------------------------------------------------------------------

def test_fred_partitions_up_to_d_are_exactly_what_was_known_on_d(sandbox, lake_dir, instance):
    res = resources(sandbox, lake_dir)
    first_run = materialize_range(fred_vintages, HISTORY_START, date(2018, 11, 12), res, instance)
    second_run = materialize_range(fred_vintages, date(2018, 11, 13), date(2018, 11, 15), res, instance)
    assert first_run.success and second_run.success
    window = days(HISTORY_START, date(2018, 11, 15))
    assert set(materialized(first_run, fred_vintages)) | set(materialized(second_run, fred_vintages)) == {
        d.isoformat() for d in window}
    assert materialized(first_run, fred_vintages)["2018-11-10"]["realtime_window"].value == "1776-07-04..2018-11-12"
    assert materialized(second_run, fred_vintages)["2018-11-13"]["realtime_window"].value == "2018-11-12..2018-11-15"

    with fred.make_http(sandbox.vendor_url("fred"), FRED_KEY, rate_per_s=200.0, burst=20) as http:
        full = pd.concat([fred.fetch_vintages(http, s, api_key=FRED_KEY).frame for s in fred.SERIES])
    store = Lake(str(lake_dir))
    parts = {d: store.read(fred_ref(d)) for d in window}
    assert set(parts[HISTORY_START]["series_id"]) == set(fred.SERIES)
    assert len(parts[date(2018, 11, 12)]) and len(parts[date(2018, 11, 13)])  # daily releases, CPI on the 13th
    for d in window:
        part = parts[d]
        if d == HISTORY_START:
            assert (part["realtime_start"] <= utc(d)).all()
        else:
            assert (part["realtime_start"] == utc(d)).all()
        union = pd.concat([parts[x] for x in window if x <= d], ignore_index=True)
        expected = full[full["realtime_start"] <= utc(d)]
        expected = expected.assign(realtime_end=expected["realtime_end"].where(expected["realtime_end"] < utc(d)))
        pd.testing.assert_frame_equal(norm(close_periods(union)), norm(expected))
        known = fred.as_of(union, utc(d))
        assert (known["realtime_start"] <= utc(d)).all()
        pd.testing.assert_frame_equal(norm(known).drop(columns="realtime_end"),
                                      norm(fred.as_of(full, utc(d))).drop(columns="realtime_end"))
    # a revision published on 11-13 (CPI) replaces a value of the first partition from that day on
    revised = parts[date(2018, 11, 13)].merge(parts[HISTORY_START], on=["series_id", "date"])
    assert (revised["series_id"] == "CPIAUCSL").any()

    single = dg.materialize([fred_vintages], partition_key="2018-11-16", resources=res, instance=instance)
    meta = materialized(single, fred_vintages)["2018-11-16"]
    part = store.read(fred_ref(date(2018, 11, 16)))
    assert meta["rows_per_series"].value == {s: int((part["series_id"] == s).sum()) for s in fred.SERIES}
    assert meta["series_count"].value == part["series_id"].nunique() > 0
    status = VendorStatusStore(store)
    assert {status.get("fred", e).status for e in fred.ENDPOINTS} == {"ok"}
    assert_key_absent(FRED_KEY, lake_dir, instance, [first_run.run_id, second_run.run_id, single.run_id])


def test_fred_not_entitled_skips_without_leaking_the_key(sandbox, lake_dir, instance):
    sandbox.deny("fred", ".*", "not_entitled")
    sandbox.clear_request_log()
    result = dg.materialize([fred_vintages], partition_key="2024-03-05",
                            resources=resources(sandbox, lake_dir), instance=instance)
    assert result.success
    assert not result.asset_materializations_for_node("fred_vintages")
    status = VendorStatusStore(Lake(str(lake_dir)))
    assert status.get("fred", "vintagedates").status == "not_entitled"
    [degraded] = status.degraded()
    assert (degraded.asset, degraded.partition, degraded.how, degraded.endpoint) == (
        "fred_vintages", "2024-03-05", "skipped", "vintagedates")
    # the key was sent (so there was something to leak), and the vendor refused it
    sent = vendor_requests(sandbox, "fred")
    assert sent and all(FRED_KEY in e["query"] and e["status"] == 423 for e in sent)
    assert_key_absent(FRED_KEY, lake_dir, instance, [result.run_id])
    with pytest.raises(NotEntitledError):
        fred_probe(resources(sandbox, lake_dir)["fred_api"], "vintagedates")
    sandbox.grant("fred")
    fred_probe(resources(sandbox, lake_dir)["fred_api"], "observations")


def assert_key_absent(key: str, lake_dir: Path, instance, run_ids: list[str]) -> None:
    """No trace of the key: lake files (Parquet read back, JSON documents), the instance's storage
    (event log database, captured compute logs) and the runs' event log entries."""
    files = [p for p in Path(lake_dir).rglob("*") if p.is_file()]
    files += [p for p in Path(instance.root_directory).rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files) or any("_status" in str(p) for p in files)
    for path in files:
        assert key.encode() not in path.read_bytes(), path
        if path.suffix == ".parquet":
            assert key not in pq.read_table(path).to_pandas().to_csv(), path
    for run_id in run_ids:
        entries = instance.all_logs(run_id)
        assert entries
        for entry in entries:
            assert key not in serialize_value(entry)


# -- no key ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("asset, resource_key, vendor, endpoints", [
    (fred_vintages, "fred_api", "fred", list(fred.ENDPOINTS)),
    (alphavantage_daily, "alphavantage_api", "alphavantage", list(alphavantage.ENDPOINTS)),
])
def test_without_a_key_the_asset_is_skipped_and_recorded(sandbox, lake_dir, instance, asset, resource_key,
                                                         vendor, endpoints):
    keyless = {"fred_api": FredResource(base_url=sandbox.vendor_url("fred"), api_key=None),
               "alphavantage_api": AlphaVantageResource(base_url=sandbox.vendor_url("alphavantage"), api_key=None)}
    sandbox.clear_request_log()
    result = materialize_range(asset, date(2024, 3, 4), date(2024, 3, 5),
                               resources(sandbox, lake_dir, **{resource_key: keyless[resource_key]}), instance)
    assert result.success
    assert not result.asset_materializations_for_node(asset.key.path[-1])
    assert not vendor_requests(sandbox, vendor)
    status = VendorStatusStore(Lake(str(lake_dir)))
    assert {status.get(vendor, e).status for e in endpoints} == {"no_credentials"}
    degraded = {d.partition: d for d in status.degraded()}
    assert set(degraded) == {"2024-03-04", "2024-03-05"}
    assert {(d.asset, d.vendor, d.how) for d in degraded.values()} == {(asset.key.path[-1], vendor, "skipped")}


# -- Alpha Vantage ----------------------------------------------------------------------------------

def recent_weekday(min_age_days: int = 4) -> date:
    day = datetime.now(timezone.utc).date() - timedelta(days=min_age_days)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def test_alphavantage_plans_within_the_daily_budget(sandbox, lake_dir, instance):
    day = recent_weekday()
    key = day.isoformat()
    store, status = Lake(str(lake_dir)), VendorStatusStore(Lake(str(lake_dir)))
    names = list(alphavantage.SERIES)
    tight = resources(sandbox, lake_dir, alphavantage_api=FastAlphaVantage(
        base_url=sandbox.vendor_url("alphavantage"), api_key=AV_KEY, requests_per_day=3))

    sandbox.clear_request_log()
    first = dg.materialize([alphavantage_daily], partition_key=key, resources=tight, instance=instance)
    assert first.success
    meta = materialized(first, alphavantage_daily)[key]
    assert meta["fetched_series"].value == names[:3]
    assert meta["deferred_series"].value == names[3:]
    assert (meta["budget_used"].value, meta["budget_remaining"].value, meta["requests_sent"].value) == (3, 0, 3)
    sent = vendor_requests(sandbox, "alphavantage")
    assert len(sent) == 3 and all("outputsize=full" in e["query"] for e in sent)  # first load: full
    budget = store.get_document(BUDGET_DOC)
    assert budget == {"limit_per_day": 3, "used_today": 3, "day": datetime.now(timezone.utc).date().isoformat()}
    assert set(store.get_document(LOADED_DOC)) == set(names[:3])
    [degraded] = status.degraded()
    assert (degraded.partition, degraded.how, degraded.endpoint) == (key, "skipped", "FX_DAILY")
    assert "budget" in degraded.reason and "USDJPY" in degraded.reason
    part = store.read(alphavantage_ref(day))
    assert sorted(part["series"]) == sorted(names[:3]) and (part["ts"] == utc(day)).all()
    with alphavantage.make_http(sandbox.vendor_url("alphavantage"), AV_KEY, rate_per_s=200.0, burst=20) as http:
        spy = alphavantage.fetch_series(http, "SPY", start=utc(day), end=utc(day) + pd.Timedelta(days=1),
                                        api_key=AV_KEY).frame
    got = part[part["series"] == "SPY"]
    assert got[["open", "high", "low", "close", "volume"]].to_numpy().tolist() == \
        spy[["open", "high", "low", "close", "volume"]].to_numpy().tolist()

    # the same day again, budget spent: nothing is sent; the kept answers still serve the partition
    sandbox.clear_request_log()
    again = dg.materialize([alphavantage_daily], partition_key=key, resources=tight, instance=instance)
    assert again.success
    assert not vendor_requests(sandbox, "alphavantage")
    meta = materialized(again, alphavantage_daily)[key]
    assert meta["served_from_kept_answers"].value == names[:3] and meta["requests_sent"].value == 0
    assert [d.partition for d in status.degraded()] == [key]
    assert store.get_document(BUDGET_DOC)["used_today"] == 3

    # a larger budget: only the deferred series are asked for, and the partition is whole again
    sandbox.clear_request_log()
    roomy = resources(sandbox, lake_dir)  # 25 a day
    restored = dg.materialize([alphavantage_daily], partition_key=key, resources=roomy, instance=instance)
    assert restored.success
    assert len(vendor_requests(sandbox, "alphavantage")) == 6
    assert materialized(restored, alphavantage_daily)[key]["fetched_series"].value == names[3:]
    assert status.degraded() == []
    part = store.read(alphavantage_ref(day))
    assert {"SPY", "QQQ", "EURUSD", "USDJPY", "BTCUSD"} <= set(part["series"])
    assert store.get_document(BUDGET_DOC)["used_today"] == 9

    # the restoration probe pays from the same budget, and sends nothing once it is spent
    lake = LakeResource(url=str(lake_dir))
    alphavantage_probe(roomy["alphavantage_api"], "TREASURY_YIELD", lake=lake)
    assert store.get_document(BUDGET_DOC)["used_today"] == 10
    sandbox.clear_request_log()
    with pytest.raises(RateLimitedError):
        alphavantage_probe(tight["alphavantage_api"], "TIME_SERIES_DAILY", lake=lake)
    assert not vendor_requests(sandbox, "alphavantage")


def test_alphavantage_throttle_note_is_a_rate_limit_not_data(sandbox, lake_dir, instance):
    sandbox.vendors["alphavantage"].configure(per_minute=1, window_s=3600)
    sandbox.vendors["alphavantage"].reset_counters()
    day = recent_weekday()
    res = resources(sandbox, lake_dir, alphavantage_api=FastAlphaVantage(
        base_url=sandbox.vendor_url("alphavantage"), api_key=AV_KEY, throttle_wait_s=0.01))
    result = dg.materialize([alphavantage_daily], partition_key=day.isoformat(), resources=res, instance=instance)
    assert result.success
    meta = materialized(result, alphavantage_daily)[day.isoformat()]
    assert meta["fetched_series"].value == ["SPY"]
    assert all(why.startswith("rate limited") for why in meta["skipped_series"].value.values())
    store = Lake(str(lake_dir))
    assert set(store.read(alphavantage_ref(day))["series"]) == {"SPY"}
    status = VendorStatusStore(store)
    assert status.get("alphavantage", "TIME_SERIES_DAILY").status == "rate_limited"
    assert status.degraded()[0].how == "skipped"


def test_alphavantage_daily_cap_quoting_the_key_is_a_rate_limit_and_never_leaks(sandbox, lake_dir, instance):
    sandbox.vendors["alphavantage"].configure(per_day=0)  # the vendor's own count says the day is spent
    sandbox.clear_request_log()
    day = recent_weekday()
    result = dg.materialize([alphavantage_daily], partition_key=day.isoformat(),
                            resources=resources(sandbox, lake_dir), instance=instance)
    assert result.success
    assert not result.asset_materializations_for_node("alphavantage_daily")  # nothing fetched: skipped
    sent = vendor_requests(sandbox, "alphavantage")
    assert len(sent) == 1  # the cap answer exhausts the budget: no second request
    store = Lake(str(lake_dir))
    assert store.get_document(BUDGET_DOC)["used_today"] == 25
    status = VendorStatusStore(store)
    assert status.get("alphavantage", "TIME_SERIES_DAILY").status == "rate_limited"
    [degraded] = status.degraded()
    assert (degraded.partition, degraded.how, degraded.endpoint) == (day.isoformat(), "skipped", "TIME_SERIES_DAILY")
    assert "rate limited" in degraded.reason
    assert_key_absent(AV_KEY, lake_dir, instance, [result.run_id])  # the vendor's notice quotes the key


def test_alphavantage_rejected_key_skips_the_asset(sandbox, lake_dir, instance):
    wrong = FastAlphaVantage(base_url=sandbox.vendor_url("alphavantage"), api_key="NOTTHEKEY")
    result = materialize_range(alphavantage_daily, date(2024, 3, 4), date(2024, 3, 5),
                               resources(sandbox, lake_dir, alphavantage_api=wrong), instance)
    assert result.success and not result.asset_materializations_for_node("alphavantage_daily")
    status = VendorStatusStore(Lake(str(lake_dir)))
    assert status.get("alphavantage", "TIME_SERIES_DAILY").status == "no_access"
    assert {(d.partition, d.how) for d in status.degraded()} == {("2024-03-04", "skipped"), ("2024-03-05", "skipped")}
    assert_key_absent("NOTTHEKEY", lake_dir, instance, [result.run_id])


# -- Fear & Greed ----------------------------------------------------------------------------------

def test_fear_greed_values_are_the_vendors_and_gaps_stay_empty(sandbox, lake_dir, instance):
    # The twin replays the real history, gaps included, only where ../shared/data is present.
    shared_data("fear_greed", "fear_greed_index_alternative_me.csv")
    first, last = date(2024, 10, 24), date(2024, 10, 27)  # alternative.me has no value for 2024-10-26
    res = resources(sandbox, lake_dir)
    result = materialize_range(fear_greed_index, first, last, res, instance)
    assert result.success
    meta = materialized(result, fear_greed_index)
    assert set(meta) == {d.isoformat() for d in days(first, last)}
    assert meta["2024-10-24"]["missing_days"].value == ["2024-10-26"]
    history_days, values, classes = sandbox.vendors["feargreed"].history()
    twin = {int(d): (int(v), c) for d, v, c in zip(history_days, values, classes)}
    store = Lake(str(lake_dir))
    for d in days(first, last):
        part = store.read(fear_greed_ref(d))
        unix_day = (d - date(1970, 1, 1)).days
        if unix_day in twin:
            assert len(part) == 1 and part["ts"].iloc[0] == utc(d)
            assert (int(part["value"].iloc[0]), part["classification"].iloc[0]) == twin[unix_day]
        else:
            assert d == date(2024, 10, 26) and part.empty
    gap = dg.materialize([fear_greed_index], partition_key="2024-10-26", resources=res, instance=instance)
    gap_meta = materialized(gap, fear_greed_index)["2024-10-26"]
    assert gap_meta["missing"].value is True and "no value" in gap_meta["note"].value
    assert gap_meta["dagster/row_count"].value == 0
    assert VendorStatusStore(store).get("feargreed", "fng").status == "ok"
