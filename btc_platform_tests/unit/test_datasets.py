"""Time splits with purge, split files, content hash, instruction rows."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from btc_platform.datasets import instructions as ins
from btc_platform.datasets import splits as sp

GAP = pd.Timedelta("24h")


def make_frame(days: int = 60, symbols=("BTC-USD", "ETH-USD"), seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2024-01-01", periods=days * 24, freq="h", tz="UTC")
    parts = []
    for k, sym in enumerate(symbols):
        close = 100.0 * (k + 1) * np.exp(np.cumsum(rng.normal(0, 0.01, len(ts))))
        log_close = pd.Series(np.log(close))
        part = pd.DataFrame({"ts": ts, "symbol": sym, "close": close})
        for j, col in enumerate(sp.FEATURE_COLUMNS):
            part[col] = rng.normal(j, 1.0, len(ts))
        part["target_return_1h"] = log_close.shift(-1) - log_close
        part["target_return_24h"] = log_close.shift(-24) - log_close
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture(scope="module")
def splits(frame):
    # Shuffled input: time_split must restore time order itself.
    return sp.time_split(frame.sample(frac=1.0, random_state=1), gap=GAP)


def keys(df: pd.DataFrame) -> set:
    return set(zip(df["ts"], df["symbol"]))


def test_splits_are_time_ordered_with_gap(splits):
    train, val, test = splits["train"], splits["validation"], splits["test"]
    assert train["ts"].max() + GAP <= val["ts"].min()
    assert val["ts"].max() + GAP <= test["ts"].min()
    # The label window of the last training row ends before validation starts.
    assert train["ts"].max() + pd.Timedelta("24h") < val["ts"].min()


def test_splits_keep_time_order_and_are_disjoint(frame, splits):
    expected = frame.sort_values(["ts", "symbol"]).reset_index(drop=True)
    for part in splits.values():
        assert part["ts"].is_monotonic_increasing
        rows = expected[expected["ts"].between(part["ts"].min(), part["ts"].max())]
        pd.testing.assert_frame_equal(part, rows.reset_index(drop=True))
    names = list(splits)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not keys(splits[a]) & keys(splits[b])


def test_purge_removes_exactly_the_gap_before_each_boundary(frame, splits):
    b1, b2 = splits["validation"]["ts"].min(), splits["test"]["ts"].min()
    in_gap = frame["ts"].between(b1 - GAP, b1, inclusive="left") | frame["ts"].between(
        b2 - GAP, b2, inclusive="left"
    )
    kept = set().union(*(keys(p) for p in splits.values()))
    assert kept == keys(frame[~in_gap])
    assert len(frame) - sum(len(p) for p in splits.values()) == 2 * 2 * 24  # 2 symbols, 2 gaps


def test_every_split_has_both_symbols(splits):
    for part in splits.values():
        assert set(part["symbol"]) == {"BTC-USD", "ETH-USD"}


def test_boundaries_are_shared_across_symbols(splits):
    for part in splits.values():
        spans = part.groupby("symbol")["ts"].agg(["min", "max"])
        assert spans.nunique().tolist() == [1, 1]


def test_too_short_input_raises():
    short = make_frame(days=2)
    with pytest.raises(ValueError, match=r"would be empty: \d+ rows over 48 distinct timestamps"):
        sp.time_split(short, gap=GAP)


def test_gap_shorter_than_horizon_raises(frame):
    with pytest.raises(ValueError, match="longest target horizon"):
        sp.time_split(frame, gap=pd.Timedelta("1h"))


def test_split_summary_is_json(splits):
    summary = json.loads(json.dumps(sp.split_summary(splits)))
    assert summary["train"]["rows"] == len(splits["train"])
    assert summary["test"]["per_symbol"] == {"BTC-USD": len(splits["test"]) // 2,
                                             "ETH-USD": len(splits["test"]) // 2}
    assert summary["validation"]["ts_min"] == splits["validation"]["ts"].min().isoformat()


def test_write_split_files_npz(tmp_path, splits):
    splits = {k: v.copy() for k, v in splits.items()}
    splits["train"].loc[[0, 5, 9], "rsi_14"] = np.nan  # three rows must be dropped
    paths = sp.write_split_files(splits, tmp_path / "ds", sp.FEATURE_COLUMNS, "target_return_1h")
    # The last test rows have no 1h target (no next bar): dropped too.
    n = {k: int(v[sp.FEATURE_COLUMNS + ["target_return_1h"]].notna().all(axis=1).sum())
         for k, v in splits.items()}
    assert n["train"] == len(splits["train"]) - 3
    with np.load(paths["npz"]) as npz:
        assert list(npz["feature_names"]) == sp.FEATURE_COLUMNS
        for name in ("train", "validation", "test"):
            X, y = npz[f"X_{name}"], npz[f"y_{name}"]
            assert X.shape == (n[name], len(sp.FEATURE_COLUMNS)) and X.dtype == np.float32
            assert y.shape == (n[name],) and y.dtype == np.float32
            assert npz[f"ts_{name}"].dtype == np.int64 and len(npz[f"symbol_{name}"]) == n[name]
            assert not np.isnan(X).any() and not np.isnan(y).any()
            parquet = pd.read_parquet(paths[name])
            assert len(parquet) == n[name]
            np.testing.assert_array_equal(
                npz[f"ts_{name}"], pd.DatetimeIndex(parquet["ts"]).as_unit("ns").asi8
            )
            np.testing.assert_allclose(y, parquet["target_return_1h"], rtol=1e-6)
        assert npz["ts_train"].max() < npz["ts_validation"].min()
    summary = json.loads(paths["summary"].read_text())
    assert summary["train"]["dropped_nan_rows"] == 3
    assert summary["test"]["dropped_nan_rows"] == 2  # last bar of each symbol


def test_write_is_atomic_when_it_fails_midway(tmp_path, splits, monkeypatch):
    out = tmp_path / "ds"
    sp.write_split_files(splits, out, sp.FEATURE_COLUMNS, "target_return_1h")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        sp.write_split_files(splits, out, sp.FEATURE_COLUMNS, "target_return_1h")
    with pytest.raises(OSError):
        sp.write_split_files(splits, tmp_path / "fresh", sp.FEATURE_COLUMNS, "target_return_1h")
    # The previous build is intact, the failed fresh one left nothing, no temp dirs remain.
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_content_hash_stable_and_sensitive(frame):
    h = sp.content_hash(frame)
    assert h == sp.content_hash(frame.sample(frac=1.0, random_state=3))
    assert h == sp.content_hash(frame[list(reversed(frame.columns))])
    changed = frame.copy()
    changed.loc[100, "macd"] += 1e-9
    assert sp.content_hash(changed) != h
    assert len(h) == 64


# ----- instructions -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    df = make_frame(days=3)
    df.loc[3, "macd"] = np.nan
    return df


def test_instruction_input_has_only_features_at_ts(small):
    rows = ins.build_instruction_rows(small, horizon="24h", feature_cols=sp.FEATURE_COLUMNS)
    usable = small.dropna(subset=sp.FEATURE_COLUMNS + ["target_return_24h"])
    assert len(rows) == len(usable) == 2 * (72 - 24) - 1
    by_key = usable.set_index(["ts", "symbol"])
    for _, row in rows.iterrows():
        payload = json.loads(row["input"])
        assert set(payload) == {"asset_symbol", "asset_class", "timestamp", "price_close",
                                *sp.FEATURE_COLUMNS}
        assert payload["asset_class"] == "crypto"
        src = by_key.loc[(pd.Timestamp(payload["timestamp"]), payload["asset_symbol"])]
        for col in sp.FEATURE_COLUMNS:
            assert payload[col] == pytest.approx(src[col], rel=1e-5, abs=1e-12)
        assert payload["price_close"] == pytest.approx(src["close"], rel=1e-9)
        numbers = [v for v in payload.values() if isinstance(v, float)]
        for target in ("target_return_1h", "target_return_24h"):
            assert not any(math.isclose(v, src[target], rel_tol=1e-4) for v in numbers)
        assert payload["timestamp"] in row["instruction"]
        assert payload["asset_symbol"] in row["instruction"]
        out = json.loads(row["output"])
        assert out["predicted_return_24h"] == pytest.approx(src["target_return_24h"], abs=1e-8)
        pct = math.expm1(src["target_return_24h"]) * 100
        assert out["predicted_return_pct_24h"] == pytest.approx(pct, abs=1e-6)  # 6 decimals


def test_instruction_text_and_determinism(small):
    a = ins.build_instruction_rows(small, feature_cols=sp.FEATURE_COLUMNS)
    b = ins.build_instruction_rows(small.sample(frac=1.0, random_state=2),
                                   feature_cols=sp.FEATURE_COLUMNS)
    pd.testing.assert_frame_equal(a, b)
    assert a.loc[0, "instruction"] == (
        "Predict the 24-hour forward log return and percent return for BTC-USD at "
        "2024-01-01T00:00:00Z based on the following technical features."
    )


def test_targets_as_features_rejected(small):
    with pytest.raises(ValueError, match="never inputs"):
        ins.build_instruction_rows(small, feature_cols=["rsi_14", "target_return_1h"])


def test_instruction_files_round_trip(tmp_path, small):
    rows = ins.build_instruction_rows(small, feature_cols=sp.FEATURE_COLUMNS)
    paths = ins.write_instruction_files(rows, tmp_path / "llm")
    csv = pd.read_csv(paths["csv"], dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(csv, rows)
    lines = paths["jsonl"].read_text().splitlines()
    jsonl = pd.DataFrame([json.loads(line) for line in lines])
    pd.testing.assert_frame_equal(jsonl, rows)
    assert list(jsonl.columns) == ["instruction", "input", "output"]
