"""The demo's window of one product with a real outage day in it: the blocked day stops only what depends
on it, and a window reaching past the last closed day is refused before anything is fetched."""

from datetime import date, timedelta

import dagster as dg
import pandas as pd
import pytest

from btc_platform.defs.coinapi.assets import coinapi_ref
from btc_platform.defs.coinbase.assets import candles_ref
from btc_platform.defs.features.assets import LOOKAHEAD_DAYS, processed_ref
from btc_platform.defs.partitions import last_closed_day, range_tags
from btc_platform.demo import DemoResult, blocked_lines, build_product
from btc_platform.lake import Lake
from btc_platform.sandbox import SandboxServer
from btc_platform.sandbox.registry import vendor_env
from btc_platform.warehouse.duckdb_store import read_table
from btc_platform_tests.conftest import shared_data

START, DAYS, OUTAGE = date(2024, 1, 12), 3, date(2024, 1, 13)
LAST = START + timedelta(days=DAYS - 1)


@pytest.fixture
def outage_sandbox(tmp_path, platform_env, monkeypatch):
    """Real BTCUSDT minutes of January 2024 replayed as BTC-USD, with 8 hours of Jan 13 lost (an outage)."""
    month = pd.read_csv(shared_data("candles_1m_btcusdt", "BTCUSDT-1m-2024-01.csv.gz"), header=None, dtype=str)
    ts = pd.to_datetime(month[0].astype("int64"), unit="ms")
    lost = (ts >= pd.Timestamp(OUTAGE) + pd.Timedelta(hours=6)) & (ts < pd.Timestamp(OUTAGE) + pd.Timedelta(hours=14))
    folder = tmp_path / "replay"
    folder.mkdir()
    month[~lost].to_csv(folder / "BTCUSDT-1m-2024-01.csv.gz", header=False, index=False, compression="gzip")
    with SandboxServer(replay={"BTC-USD": str(folder)}) as server:
        server.vendors["alphavantage"].configure(per_minute=None, per_day=None)
        for name, value in vendor_env(server).items():
            monkeypatch.setenv(name, value)
        yield server


def test_a_blocked_day_stops_only_what_depends_on_it(outage_sandbox, instance, platform_env):
    from btc_platform.definitions import defs
    from btc_platform.defs.resources import build_resources

    outcome, lines = DemoResult(), []
    build_product(defs, instance, build_resources(), "BTC-USD", START, LAST, outcome, log=lines.append)

    [reason] = outcome.blocked["BTC-USD"][OUTAGE]
    assert list(outcome.blocked["BTC-USD"]) == [OUTAGE] and "coverage" in reason
    # CoinAPI replays the same market, so its own check refuses the same day; nothing else stops.
    assert all(f"{OUTAGE}|BTC-USD" in line for line in outcome.stopped), outcome.stopped
    assert any(line.startswith(f"  blocked:    BTC-USD {OUTAGE}: adjusted coverage") for line in blocked_lines(outcome))
    assert any(str(OUTAGE) in line for line in lines)

    lake = Lake(platform_env["BTC_PLATFORM_LAKE_URL"])
    ingested = [START + timedelta(days=n) for n in range(DAYS + LOOKAHEAD_DAYS)]
    built = {d for d in ingested if lake.exists(processed_ref("candles", d, "BTC-USD"))}
    assert built == set(ingested) - {OUTAGE}  # every other day, before and after it
    assert {d for d in ingested if lake.exists(processed_ref("technical_features", d, "BTC-USD"))} == built
    assert {d for d in (START, OUTAGE, LAST) if lake.exists(processed_ref("forward_targets", d, "BTC-USD"))} \
        == {START, LAST}
    spot = {d for d in (START, OUTAGE, LAST) if lake.exists(coinapi_ref("coinapi_spot_ohlcv", d, "BTC-USD"))}
    assert spot >= {START, LAST}  # a day refused inside a run's range leaves the range's other days built
    loaded = read_table(platform_env["BTC_PLATFORM_DUCKDB_PATH"], "raw.coinbase_candles_1m")
    assert set(loaded["ts"].dt.date) == built  # the outage day's rows never reach the warehouse
    quality = read_table(platform_env["BTC_PLATFORM_DUCKDB_PATH"], "raw.candle_quality")
    quality = quality.set_index(pd.to_datetime(quality["partition_date"]).dt.date)
    assert set(quality.index) == set(ingested)  # ... but its quality facts do, for the coverage view
    assert quality.loc[OUTAGE, "blocking_failures"] == reason and quality.loc[START, "blocking_failures"] == ""

    runs = [r.dagster_run for r in instance.get_run_records()]
    assert len(runs) == outcome.runs
    # The ingest run fails on the blocking coverage check; any other only where it names the day.
    failed = {r.run_id[:8] for r in runs if not r.is_success}
    listed = {line.split("(run ")[1][:8] for line in outcome.stopped}
    assert listed <= failed and len(failed - listed) == 1


def test_ingest_refuses_days_not_yet_closed_before_fetching(run, platform_env, clean_sandbox):
    closed = last_closed_day()
    clean_sandbox.clear_request_log()
    result = run(["coinbase_candles_1m"], tags=range_tags(closed, closed + timedelta(days=3), "BTC-USD"),
                 raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = failure.step_failure_data.error.to_string()
    assert f"partition day {closed + timedelta(days=1)} (and 2 later days) is after the last closed UTC day {closed}" \
        in message
    assert [e for e in clean_sandbox.request_log if e["vendor"] == "coinbase"] == []
    lake = Lake(platform_env["BTC_PLATFORM_LAKE_URL"])
    assert not any(lake.exists(candles_ref(closed + timedelta(days=n), "BTC-USD")) for n in range(4))


def test_a_refused_day_inside_a_range_leaves_the_other_days_built(tmp_path):
    from btc_platform.defs.partitions import build_each_partition, daily

    @dg.asset(partitions_def=daily)
    def days_written(context: dg.AssetExecutionContext):
        def build(key, day, _symbol):
            if day == date(2024, 1, 3):
                raise dg.Failure(f"{key}: refused")
            (tmp_path / key).write_text("built")
            return {"dagster/row_count": 1}

        return build_each_partition(context, build)

    with dg.instance_for_test() as instance:
        result = dg.materialize([days_written], instance=instance, raise_on_error=False,
                                tags=range_tags(date(2024, 1, 1), date(2024, 1, 5)))
        assert not result.success
        assert sorted(p.name for p in tmp_path.iterdir()) == ["2024-01-01", "2024-01-02", "2024-01-04", "2024-01-05"]
        assert instance.get_materialized_partitions(days_written.key) == {"2024-01-01", "2024-01-02", "2024-01-04",
                                                                           "2024-01-05"}
        [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
        assert "2024-01-03: refused" in failure.step_failure_data.error.to_string()


def test_the_demo_prints_one_progress_line_per_run_with_days_rows_and_time(run, instance):
    """Progress hears of each run: its stage, the days it covered of the window, rows written, time,
    and a failed step by name (the console logger stays quiet)."""
    from btc_platform.defs.partitions import range_tags
    from btc_platform.demo import Progress

    lines: list[str] = []
    progress = Progress(lines.append, total_days=2)
    tags = range_tags(date(2024, 3, 4), date(2024, 3, 5), "BTC-USD")
    run(["coinbase_candles_1m"], tags=tags, progress=progress)
    run(["coinbase_candles_1m_quality"], "2024-03-09|BTC-USD", raise_on_error=False, progress=progress)  # never ingested
    assert len(lines) >= 3 and progress.runs == 2
    assert "coinbase_candles_1m " in lines[0] and "BTC-USD 2024-03-04..2024-03-05 (2/2 days)" in lines[0]
    assert "2,880 rows" in lines[0] or progress.rows > 2000, lines[0]
    assert lines[0].rstrip().endswith("s)") and " ok " in lines[0]
    assert "FAILED (run" in lines[1] and "coinbase_candles_1m_quality:" in lines[2]
