"""Walk-forward folds: purge before evaluation windows, embargo after test windows, no label overlap."""

import pandas as pd
import pytest

from btc_platform.datasets.columns import with_decision_at
from btc_platform.datasets.walk_forward import WalkForwardSpec, plan_folds, verify_purged, walk_forward
from btc_platform_tests.synthetic_tables import training_table

PURGE, EMBARGO = pd.Timedelta("24h"), pd.Timedelta("12h")


@pytest.fixture(scope="module")
def table():
    return with_decision_at(training_table(days=40, seed=1))


def label_end(part):
    return part["decision_at"] + PURGE


def test_folds_are_time_ordered_and_purged(table):
    folds = walk_forward(table, WalkForwardSpec(PURGE, EMBARGO, n_folds=3, validation_fraction=0.1, test_fraction=0.1))
    assert len(folds) == 3
    for parts in folds:
        train, val, test = parts["train"], parts["validation"], parts["test"]
        assert label_end(train).max() <= val["ts"].min()  # no training label reaches validation
        assert label_end(val).max() <= test["ts"].min()
        assert train["ts"].max() < val["ts"].min() < test["ts"].min()
        assert verify_purged(parts, PURGE, EMBARGO)["passed"]
        assert set(val["symbol"]) == set(test["symbol"]) == {"BTC-USD", "ETH-USD"}
    tests = [p["test"] for p in folds]
    assert all(a["ts"].max() < b["ts"].min() for a, b in zip(tests, tests[1:]))
    assert len(folds[0]["train"]) < len(folds[2]["train"])  # expanding window


def test_train_on_all_keeps_rows_after_the_embargo_only(table):
    spec = WalkForwardSpec(PURGE, EMBARGO, n_folds=2, validation_fraction=0.1, test_fraction=0.2, train_on="all")
    first = walk_forward(table, spec)[0]
    test_end = label_end(first["test"]).max()
    after = first["train"][first["train"]["ts"] > first["test"]["ts"].max()]
    assert len(after) > 0
    assert after["ts"].min() >= test_end + EMBARGO
    assert after["ts"].min() - EMBARGO - test_end < pd.Timedelta("2h")  # nothing more than the embargo dropped
    assert verify_purged(first, PURGE, EMBARGO)["passed"]


def test_verify_catches_a_leaking_split(table):
    parts = walk_forward(table, WalkForwardSpec(PURGE, EMBARGO))[0]
    leaked = dict(parts, train=pd.concat([parts["train"], table[table["ts"] == parts["validation"]["ts"].min()
                                                              - pd.Timedelta("3h")]]))
    result = verify_purged(leaked, PURGE, EMBARGO)
    assert not result["passed"] and "reaches into validation" in result["problems"][0]


def test_purge_is_measured_from_decision_time(table):
    folds = plan_folds(table, WalkForwardSpec(PURGE, EMBARGO))
    parts = walk_forward(table, WalkForwardSpec(PURGE, EMBARGO))[0]
    # The last training bar opens bar + purge before validation: its label ends exactly there.
    assert parts["train"]["ts"].max() == folds[0].validation_start - PURGE - pd.Timedelta("1h")


@pytest.mark.parametrize("kwargs", [{"n_folds": 0}, {"validation_fraction": 0.5, "test_fraction": 0.5},
                                    {"train_on": "future"}, {"purge": pd.Timedelta("-1h")}])
def test_bad_specs_raise(kwargs):
    with pytest.raises(ValueError):
        WalkForwardSpec(**{"purge": PURGE, "embargo": EMBARGO, **kwargs})


def test_too_short_table_raises():
    short = with_decision_at(training_table(days=3))
    with pytest.raises(ValueError, match="timestamps"):
        walk_forward(short, WalkForwardSpec(pd.Timedelta("48h"), EMBARGO))
