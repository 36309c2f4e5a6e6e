"""Coverage travels with the bar: a partial hour (22 of 60 minutes) keeps its prices but not its
volume features, and the training data says which rows were built on partial bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btc_platform.datasets.text_encoder import describe_market_state
from btc_platform.features import compute_technical_features, resample_ohlcv
from btc_platform.features.grid import technical_features_on_grid
from btc_platform.features.technical import FEATURE_COLUMNS, VOLUME_COLUMNS
from btc_platform_tests.conftest import shared_data

START = pd.Timestamp("2024-01-01", tz="UTC")
DAYS = 10
PARTIAL = pd.Timestamp("2024-01-08 14:00", tz="UTC")  # keeps its first 22 minutes


@pytest.fixture(scope="module")
def minutes() -> pd.DataFrame:
    raw = pd.read_csv(shared_data("candles_1m_btcusdt", "BTCUSDT-1m-2024-01.csv.gz"), header=None,
                      usecols=range(6), names=["ms", "open", "high", "low", "close", "volume"])
    out = raw.assign(ts=pd.to_datetime(raw.pop("ms"), unit="ms", utc=True), symbol="BTC-USD", source="binance")
    return out[out["ts"] < START + pd.Timedelta(days=DAYS)].reset_index(drop=True)


def hourly(minutes: pd.DataFrame) -> pd.DataFrame:
    return resample_ohlcv(minutes, "1h", START, START + pd.Timedelta(days=DAYS))


def lose_minutes(minutes: pd.DataFrame) -> pd.DataFrame:
    lost = (minutes["ts"] >= PARTIAL + pd.Timedelta("22min")) & (minutes["ts"] < PARTIAL + pd.Timedelta("1h"))
    return minutes[~lost].reset_index(drop=True)


def test_each_bar_carries_its_minute_coverage(minutes):
    full, partial = hourly(minutes), hourly(lose_minutes(minutes))
    assert (full["bar_coverage"] == 1.0).all()  # every real minute of these days traded
    row = partial.set_index("ts").loc[PARTIAL]
    assert row["n_source_bars"] == 22 and row["bar_coverage"] == pytest.approx(22 / 60)
    daily = resample_ohlcv(lose_minutes(minutes), "1D", START, START + pd.Timedelta(days=DAYS)).set_index("ts")
    assert daily.loc[PARTIAL.normalize(), "bar_coverage"] == pytest.approx((1440 - 38) / 1440)


def test_a_partial_hour_loses_its_volume_features_not_its_prices(minutes):
    bars = hourly(lose_minutes(minutes))
    end = START + pd.Timedelta(days=DAYS)
    got = technical_features_on_grid(bars, "1h", START, end).set_index("ts")
    plain = compute_technical_features(bars, "1h").set_index("ts")
    # Read as real, the 22 minutes look like a collapse in activity.
    assert plain.loc[PARTIAL, "volume_ratio_20"] < 0.6
    row = got.loc[PARTIAL]
    assert row["partial_bar"] and row[VOLUME_COLUMNS].isna().all()
    others = [c for c in FEATURE_COLUMNS if c not in VOLUME_COLUMNS]
    pd.testing.assert_series_equal(row[others].astype(float), plain.loc[PARTIAL, others].astype(float),
                                   check_names=False)
    # Only that bar: the full bars around it keep every value, and the flag is false there.
    assert got["partial_bar"].sum() == 1
    rest = got.index != PARTIAL
    pd.testing.assert_frame_equal(got.loc[rest, FEATURE_COLUMNS], plain.loc[rest, FEATURE_COLUMNS], check_exact=True)
    # The prompt says the volume is unknown instead of calling the hour quiet.
    assert "volume 0.4x its 20-bar average" in describe_market_state(plain.loc[PARTIAL].to_dict())
    text = describe_market_state({**row.to_dict(), "bar_coverage": 22 / 60})
    assert "volume unknown (partial bar, 37% of its minutes)" in text and "average" not in text


def test_the_threshold_is_a_setting(minutes):
    bars = hourly(lose_minutes(minutes))
    end = START + pd.Timedelta(days=DAYS)
    lenient = technical_features_on_grid(bars, "1h", START, end, min_coverage=0.3).set_index("ts")
    assert not lenient.loc[PARTIAL, "partial_bar"] and np.isfinite(lenient.loc[PARTIAL, "volume_ratio_20"])
    trusting = technical_features_on_grid(bars, "1h", START, end, min_coverage=None)
    assert not trusting["partial_bar"].any()


def test_candles_written_before_the_column_existed_use_n_source_bars(minutes):
    bars = hourly(lose_minutes(minutes)).drop(columns="bar_coverage")
    got = technical_features_on_grid(bars, "1h", START, START + pd.Timedelta(days=DAYS)).set_index("ts")
    assert got.loc[PARTIAL, "partial_bar"] and got["partial_bar"].sum() == 1


# ---- the training data carries the coverage and limits the rows built on partial bars ----------

def with_partial_bars(table: pd.DataFrame, rows: list[int]) -> pd.DataFrame:
    out = table.copy()
    out.loc[rows, ["n_source_bars", "bar_coverage"]] = [22, 22 / 60]
    out["partial_bar"] = out["bar_coverage"] < 0.9
    out.loc[rows, "volume_ratio_20"] = np.nan  # as the features asset writes them
    out["lookback_gap"] = False
    return out


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    from btc_platform_tests.synthetic_tables import training_table

    return training_table(days=30, seed=3)


def test_split_datasets_carry_the_coverage_but_never_learn_from_it(table):
    from btc_platform.datasets.split_dataset import SplitSpec, build_split_dataset

    partial = with_partial_bars(table, [400, 401])
    build = build_split_dataset(partial, SplitSpec(), dataset="t", source_name="t", source_hash="h")
    assert not {"bar_coverage", "n_source_bars", "partial_bar", "lookback_gap"} & set(build.extra["features"])
    parts = {s: build.files[f"{s}.parquet"] for s in ("train", "validation", "test")}
    assert all({"bar_coverage", "partial_bar"} <= set(p.columns) for p in parts.values())
    both = pd.concat(parts.values())
    assert both["partial_bar"].sum() == 2 and sorted(both.loc[both["partial_bar"], "bar_coverage"]) == [22 / 60] * 2
    arrays = build.files["splits.npz"]
    assert sum(int((arrays[f"bar_coverage_{s}"] < 0.9).sum()) for s in parts) == 2
    check = build.checks["partial_bars"]
    assert check["passed"] and check["partial_rows"] == 2 and check["lookback_gap_rows"] == 0


def test_too_many_rows_on_partial_bars_fail_naming_the_days(table):
    from btc_platform.datasets import checks
    from btc_platform.datasets.split_dataset import SplitSpec, build_split_dataset

    day = table.index[(table["symbol"] == "ETH-USD") & (table["ts"].dt.strftime("%F") == "2024-02-20")].tolist()
    partial = with_partial_bars(table, day)
    build = build_split_dataset(partial, SplitSpec(max_partial_bar_share=0.01), dataset="t", source_name="t",
                                source_hash="h")
    check = build.checks["partial_bars"]
    assert not check["passed"] and check["partial_rows"] == 24
    assert "24 of " in check["message"] and "ETH-USD 2024-02-20 (24 rows)" in check["message"]
    assert check["partial_by_day"] == {"ETH-USD 2024-02-20": 24}
    # Under the default limit (5% of the rows) one such day passes, reported.
    assert build_split_dataset(partial, SplitSpec(), dataset="t", source_name="t",
                               source_hash="h").checks["partial_bars"]["passed"]
    # Without the flag column the coverage decides; without either the check cannot pass.
    assert checks.partial_bars(partial.drop(columns="partial_bar"), 0.01)["partial_rows"] == 24
    blind = checks.partial_bars(table.drop(columns=["bar_coverage"]), 0.05)
    assert not blind["passed"] and "no bar_coverage column" in blind["message"]


def test_llm_rows_carry_the_decision_bars_coverage(table):
    from btc_platform.datasets.columns import feature_columns
    from btc_platform.datasets.instructions import InstructionSpec, alpaca_rows, build_samples
    from btc_platform.datasets.preferences import PreferenceSpec, dpo_rows, grpo_rows

    partial = with_partial_bars(table, [400])
    samples = build_samples(partial, feature_columns(partial), InstructionSpec(horizon="24h", context_length=3))
    alpaca = alpaca_rows(samples).set_index(["symbol", "decision_at"])
    key = (partial.loc[400, "symbol"], partial.loc[400, "decision_at"].strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert alpaca.loc[key, "bar_coverage"] == pytest.approx(22 / 60, rel=1e-5)
    assert "volume unknown (partial bar, 37% of its minutes)" in alpaca.loc[key, "instruction"]
    scored = partial.dropna(subset=["target_entry_price", "target_return_24h", "target_high_24h", "target_low_24h"])
    for rows in (grpo_rows(scored, PreferenceSpec()), dpo_rows(scored, PreferenceSpec())):
        hit = rows[(rows["symbol"] == key[0]) & (rows["decision_at"] == key[1])]
        assert len(hit) and (hit["bar_coverage"] == 22 / 60).all()
        assert (rows.drop(hit.index)["bar_coverage"] == 1.0).all()
