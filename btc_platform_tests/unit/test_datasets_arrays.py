"""Feature discovery, train-only scalers, LSTM windows and the split dataset build."""

import io

import numpy as np
import pandas as pd
import pytest

from btc_platform.datasets import columns
from btc_platform.datasets.hashing import content_hash
from btc_platform.datasets.scaling import Scaler, fit_scaler
from btc_platform.datasets.sequences import sequence_windows
from btc_platform.datasets.split_dataset import SplitSpec, build_split_dataset
from btc_platform_tests.synthetic_tables import training_table


@pytest.fixture(scope="module")
def table():
    return training_table(days=30, seed=2)


def test_features_are_discovered_by_exclusion(table):
    features = columns.feature_columns(table)
    assert {"close", "rsi_14", "kmid", "vix", "vix_age_hours", "rsi_14_4h", "funding_rate"} <= set(features)
    assert not [c for c in features if c.startswith("target_")]
    # all-null columns, their ages, strings, reasons, sources and keys are never features
    for absent in ("gold_price", "gold_price_age_hours", "vix_source", "funding_rate_missing_reason",
                   "asset_class", "symbol", "ts", "decision_at", "source"):
        assert absent not in features


def test_warmup_rows_are_dropped_per_symbol(table):
    frame, dropped = columns.drop_warmup(table)
    assert dropped == 2 * 30  # volatility_30 needs 30 returns (31 closes) in each symbol
    assert frame[list(columns.REQUIRED_CORE)].notna().all().all()


def test_scaler_uses_the_train_rows_only():
    train = np.array([[1.0, 5.0], [3.0, 5.0], [np.nan, 5.0]])
    scaler = fit_scaler(train, ["a", "b"])
    assert scaler.center.tolist() == [2.0, 5.0] and scaler.scale.tolist() == [1.0, 1.0]  # constant -> scale 1
    out = scaler.transform(np.array([[4.0, np.nan]]))
    assert out.tolist() == [[2.0, 0.0]]
    again = Scaler.from_json(scaler.to_json())
    assert np.array_equal(again.transform(train), scaler.transform(train))
    values = np.array([[1.0], [2.0], [3.0], [100.0]])
    robust = fit_scaler(values, ["x"], "robust")
    q1, q3 = np.percentile(values, [25, 75])
    assert robust.center[0] == 2.5 and robust.scale[0] == pytest.approx(q3 - q1)  # an outlier barely moves it


def test_sequences_never_straddle_gaps_or_symbols():
    ts = pd.date_range("2024-01-01", periods=10, freq="h", tz="UTC")
    frame = pd.concat([pd.DataFrame({"symbol": "A", "ts": ts.delete(4)}),  # a hole at hour 4
                       pd.DataFrame({"symbol": "B", "ts": ts[:5]})], ignore_index=True)
    X = np.arange(len(frame), dtype=np.float32).reshape(-1, 1)
    y = np.arange(len(frame), dtype=np.float32)
    out = sequence_windows(frame, X, y, length=3, bar=pd.Timedelta("1h"))
    # A: hours 0-3 (4 rows) -> 2 windows, hours 5-9 (5 rows) -> 3; B: 5 rows -> 3
    assert out["X"].shape == (8, 3, 1)
    for window, end, sym in zip(out["X"][:, :, 0], out["end_ts"], out["symbol"]):
        rows = frame.loc[window.astype(int)]
        assert set(rows["symbol"]) == {sym}
        assert (rows["ts"].diff().dropna() == pd.Timedelta("1h")).all()
        assert rows["ts"].iloc[-1].value == end
    assert np.array_equal(out["y"], out["X"][:, -1, 0])  # labelled by the last bar


def test_split_build_files_and_checks(table):
    build = build_split_dataset(table, SplitSpec(n_folds=2, test_fraction=0.1, validation_fraction=0.1),
                                dataset="d", source_name="marts.t", source_hash=content_hash(table))
    assert {"train.parquet", "splits.npz", "sequences.npz", "scaler.json",
            "folds/fold=0/train.parquet", "folds/fold=0/splits.npz"} <= set(build.files)
    assert all(c["passed"] for c in build.checks.values()), build.checks
    npz, train = build.files["splits.npz"], build.files["train.parquet"]
    features = list(npz["feature_names"])
    assert npz["X_train"].shape == (len(train), len(features)) and npz["X_train"].dtype == np.float32
    assert np.allclose(npz["y_train"], train["target_return_1h"])
    assert np.array_equal(npz["ts_train"], pd.DatetimeIndex(train["ts"]).as_unit("ns").asi8)
    assert npz["ts_train"].max() < npz["ts_validation"].min() < npz["ts_test"].min()
    scaler = build.files["scaler.json"]
    assert np.allclose(scaler["center"], np.nanmean(npz["X_train"], axis=0), rtol=1e-4, atol=1e-6)
    seq = build.files["sequences.npz"]
    assert seq["X_train"].shape[1:] == (24, len(features))
    # The LSTM's second target: the 24h label of each window's last bar, coded sell/hold/buy = 0/1/2.
    assert list(seq["label_classes"]) == ["sell", "hold", "buy"]
    by_end = dict(zip(zip(train["symbol"], pd.DatetimeIndex(train["ts"]).as_unit("ns").asi8), train["target_label_24h"]))
    expected = [{"sell": 0, "hold": 1, "buy": 2}[by_end[(s, t)]] for s, t in zip(seq["symbol_train"], seq["end_ts_train"])]
    assert seq["label_train"].tolist() == expected
    # Saved and loaded as a trainer does: no pickled object arrays.
    buf = io.BytesIO()
    np.savez_compressed(buf, **seq)
    with np.load(io.BytesIO(buf.getvalue()), allow_pickle=False) as loaded:
        assert loaded["symbol_train"].tolist() == seq["symbol_train"].tolist()
    # 3d/5d/90d targets would cross a 24h purge: not in the split files
    assert "target_return_5d" not in train and "target_return_24h" in train


def test_purge_shorter_than_horizon_is_refused(table):
    with pytest.raises(ValueError, match="shorter than the horizon"):
        build_split_dataset(table, SplitSpec(target="target_return_24h", purge="12h"), dataset="d",
                            source_name="t", source_hash="h")


def test_version_follows_content_and_config(table):
    def version(frame, **kw):
        return build_split_dataset(frame, SplitSpec(**kw), dataset="d", source_name="t",
                                   source_hash=content_hash(frame)).version
    base = version(table)
    assert version(table.sample(frac=1.0, random_state=0)) == base  # row order does not matter
    changed = table.copy()
    changed.loc[5, "macd"] += 1e-6
    assert version(changed) != base and version(table, embargo="48h") != base
