"""Bad input fails at once, naming the argument or variable and the bad value, before any work starts."""

from datetime import date, datetime, timedelta, timezone

import pytest

from btc_platform.config import NUMERIC_ENV, check_numeric_env, env_int
from btc_platform.defs.features.assets import LOOKAHEAD_DAYS
from btc_platform.defs.partitions import last_closed_day, refuse_open_days
from btc_platform.demo import check_arguments, main, window_segments

NOW = datetime(2026, 12, 3, 16, 0, tzinfo=timezone.utc)
SYMBOLS = ["BTC-USD", "ETH-USD"]


def test_the_last_closed_day_is_yesterday_in_utc():
    assert last_closed_day(NOW) == date(2026, 12, 2)
    # 23:30 on Dec 2 in New York is already Dec 3 in UTC.
    assert last_closed_day(datetime(2026, 12, 2, 23, 30, tzinfo=timezone(timedelta(hours=-5)))) == date(2026, 12, 2)


def test_days_not_yet_closed_are_refused_naming_the_first():
    refuse_open_days([date(2026, 12, 1), date(2026, 12, 2)], "partition", NOW)  # closed: fine
    with pytest.raises(ValueError, match=r"partition 2026-12-03 \(and 2 later days\) is after the last closed "
                                         r"UTC day 2026-12-02"):
        refuse_open_days([date(2026, 12, 5), date(2026, 12, 3), date(2026, 12, 4)], "partition", NOW)


def test_demo_refuses_a_future_window_naming_the_start():
    with pytest.raises(ValueError, match=r"--start 2031-01-01 --days 21: .* after the last closed UTC day 2026-12-02"):
        check_arguments(date(2031, 1, 1), 21, SYMBOLS, now=NOW)
    # The targets' look-ahead days are ingested too: a window ending yesterday is already too late.
    with pytest.raises(ValueError, match=rf"look {LOOKAHEAD_DAYS} days ahead"):
        check_arguments(date(2026, 12, 1), 2, SYMBOLS, now=NOW)
    latest = date(2026, 12, 2) - timedelta(days=1 + LOOKAHEAD_DAYS)
    check_arguments(latest, 2, SYMBOLS, now=NOW)  # the latest start that fits


@pytest.mark.parametrize("start, days, symbols, named", [
    (date(2024, 1, 1), 0, SYMBOLS, "--days 0"),
    (date(2024, 1, 1), -3, SYMBOLS, "--days -3"),
    (date(2024, 1, 1), 21, ["DOGE-USD"], "--symbols DOGE-USD: DOGE-USD is not a product"),
    (date(2024, 1, 1), 21, ["BTC-USD", "btc-usd"], "btc-usd is not a product"),
    (date(2024, 1, 1), 21, [], "--symbols"),
    (date(2020, 1, 1), 21, ["SOL-USD"], "--start 2020-01-01: SOL-USD trades on Coinbase from 2021"),
])
def test_demo_arguments_are_checked_up_front(start, days, symbols, named):
    with pytest.raises(ValueError, match=named):
        check_arguments(start, days, symbols, now=NOW)


def test_demo_replay_needs_a_folder_for_a_chosen_symbol(tmp_path):
    assert check_arguments(date(2024, 1, 1), 3, SYMBOLS, [f"BTC-USD={tmp_path}"], now=NOW) == {"BTC-USD": str(tmp_path)}
    for item in ("BTC-USD", f"SOL-USD={tmp_path}", f"BTC-USD={tmp_path / 'absent'}"):
        with pytest.raises(ValueError, match=f"--replay {item}"):
            check_arguments(date(2024, 1, 1), 3, SYMBOLS, [item], now=NOW)


@pytest.mark.parametrize("argv, named", [
    (["--days", "0"], "--days 0"),
    (["--symbols", "DOGE-USD"], "--symbols DOGE-USD"),
    (["--start", "2031-01-01"], "--start 2031-01-01"),
])
def test_demo_command_exits_at_once_with_the_argument_named(argv, named, capsys, monkeypatch, tmp_path):
    # Nothing starts: no sandbox, no instance (DAGSTER_HOME would be created first otherwise).
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "home").exists()


def test_demo_command_names_a_bad_numeric_variable(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ALPHAVANTAGE_REQUESTS_PER_DAY", "abc")
    with pytest.raises(SystemExit):
        main(["--start", "2024-01-01", "--days", "2"])
    assert "ALPHAVANTAGE_REQUESTS_PER_DAY='abc': expected a whole number" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(NUMERIC_ENV))
@pytest.mark.parametrize("value, problem", [("abc", "expected a whole number"), ("2.5", "expected a whole number"),
                                            ("-1", "expected a whole number >=")])
def test_every_numeric_variable_names_itself_and_the_bad_value(name, value, problem):
    with pytest.raises(ValueError, match=f"{name}='{value}': {problem}"):
        env_int(name, {name: value})
    with pytest.raises(ValueError, match=name):
        check_numeric_env({name: value})


def test_numeric_variables_read_their_value_or_default():
    assert env_int("ALPHAVANTAGE_REQUESTS_PER_DAY", {}) == 25
    assert env_int("ALPHAVANTAGE_REQUESTS_PER_DAY", {"ALPHAVANTAGE_REQUESTS_PER_DAY": " 75 "}) == 75
    assert env_int("BTC_PLATFORM_TRAINING_GPUS", {"BTC_PLATFORM_TRAINING_GPUS": ""}) is None
    check_numeric_env({})


def test_resources_fail_naming_the_variable(monkeypatch):
    from btc_platform.defs.resources import build_resources

    monkeypatch.setenv("ALPHAVANTAGE_REQUESTS_PER_DAY", "abc")
    with pytest.raises(ValueError, match="ALPHAVANTAGE_REQUESTS_PER_DAY='abc'"):
        build_resources()
    monkeypatch.delenv("ALPHAVANTAGE_REQUESTS_PER_DAY")
    monkeypatch.setenv("BTC_PLATFORM_TRAINING_GPUS", "two")
    with pytest.raises(ValueError, match="BTC_PLATFORM_TRAINING_GPUS='two'"):
        build_resources()


def test_window_segments_skip_excluded_days():
    d = date(2024, 1, 1)
    days = lambda *n: {d + timedelta(days=k) for k in n}  # noqa: E731
    assert window_segments(d, d + timedelta(days=4), set()) == [(d, d + timedelta(days=4))]
    assert window_segments(d, d + timedelta(days=6), days(2, 3, 6)) == [
        (d, d + timedelta(days=1)), (d + timedelta(days=4), d + timedelta(days=5))]
    assert window_segments(d, d + timedelta(days=2), days(0, 1, 2)) == []
    assert window_segments(d, d + timedelta(days=2), days(-5, 0)) == [(d + timedelta(days=1), d + timedelta(days=2))]
