"""compute_targets: multi-horizon log/percent returns, target price, labels; lookahead; completeness."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from btc_platform.features.resample import resample_ohlcv
from btc_platform.features.targets import (
    DEFAULT_TARGET_HORIZONS,
    LABELS,
    compute_forward_returns,
    compute_targets,
    label_returns,
    lookahead,
    lookahead_partitions,
    targets_complete,
)
from btc_platform_tests.conftest import shared_data

UTC = "UTC"
T0 = pd.Timestamp("2024-03-01", tz=UTC)
H = pd.Timedelta("1h")
D = pd.Timedelta("1D")


def hourly(hours: list[int], close: list[float], symbol: str = "BTC-USD", **extra) -> pd.DataFrame:
    return pd.DataFrame({"ts": [T0 + h * H for h in hours], "symbol": symbol,
                         "close": np.asarray(close, dtype=float), **extra})


def gbm(n: int, step: pd.Timedelta, seed: int = 0, start: pd.Timestamp = T0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"ts": start + step * np.arange(n), "symbol": "BTC-USD",
                         "close": 30000 * np.exp(np.cumsum(rng.normal(0, 0.02, n))),
                         "is_filled": False})


# ---------------------------------------------------------------- exact values, missing bars

def test_hand_built_hourly_with_missing_bars():
    hours = [0, 1, 2, 4, 5, 25, 26]               # 03:00 missing; a day later only 01:00 and 02:00
    close = [100.0, 101.0, 99.0, 104.0, 103.0, 110.0, 90.0]
    out = compute_targets(hourly(hours, close), bar=H, horizons={"1h": H, "1d": D})

    assert list(out.columns) == [
        "ts", "symbol", "close", "target_entry_price",
        "target_return_1h", "target_return_pct_1h", "target_return_1d", "target_return_pct_1d",
        "target_label_1d",
    ]
    nan = np.nan
    r1 = [np.log(101 / 100), np.log(99 / 101), nan, np.log(103 / 104), nan, np.log(90 / 110), nan]
    np.testing.assert_allclose(out["target_return_1h"], r1, rtol=1e-15)
    np.testing.assert_allclose(out["target_return_pct_1h"],
                               [1.0, (99 / 101 - 1) * 100, nan, (103 / 104 - 1) * 100, nan,
                                (90 / 110 - 1) * 100, nan], rtol=1e-12)
    r1d = [nan, np.log(110 / 101), np.log(90 / 99), nan, nan, nan, nan]
    np.testing.assert_allclose(out["target_return_1d"], r1d, rtol=1e-15)
    # 101 -> 110 is +8.9%: buy; 99 -> 90 is -9.1%: sell; no 1d return, no label
    assert out["target_label_1d"].tolist() == [None, "buy", "sell", None, None, None, None]
    assert out["target_entry_price"].tolist() == close
    # identical to the original function where they overlap
    old = compute_forward_returns(hourly(hours, close), {"1h": 1, "1d": 24}, H)
    np.testing.assert_array_equal(out["target_return_1d"], old["target_return_1d"])


def test_missing_future_bar_gives_nan_exactly_where_expected():
    """Random holes in a daily series: a target is NaN iff its exit day is absent."""
    bars = gbm(400, D, seed=1)
    rng = np.random.default_rng(2)
    bars = bars[rng.uniform(size=len(bars)) > 0.1].reset_index(drop=True)
    out = compute_targets(bars, bar=D)
    assert [c for c in out.columns if c.startswith("target_return_") and "pct" not in c] == [
        "target_return_1d", "target_return_3d", "target_return_5d", "target_return_90d"]
    present = set(bars["ts"])
    by_ts = bars.set_index("ts")["close"]
    for name, h in [("1d", D), ("3d", 3 * D), ("5d", 5 * D), ("90d", 90 * D)]:
        exit_ts = bars["ts"] + h
        expect_nan = ~exit_ts.isin(present)
        assert (out[f"target_return_{name}"].isna() == expect_nan).all(), name
        ok = ~expect_nan
        expected = np.log(by_ts.loc[exit_ts[ok]].to_numpy() / bars.loc[ok, "close"].to_numpy())
        np.testing.assert_allclose(out.loc[ok, f"target_return_{name}"], expected, rtol=1e-15)
        # a positional shift would have produced a (wrong) number for rows whose exit is absent
        shifted = np.log(bars["close"].shift(-(h // D)) / bars["close"])
        assert (shifted[expect_nan].notna()).any(), name
    # target price 90d is the exit close itself
    ok = out["target_return_90d"].notna()
    np.testing.assert_array_equal(out.loc[ok, "target_price_90d"],
                                  by_ts.loc[bars.loc[ok, "ts"] + 90 * D].to_numpy())
    assert (out["target_price_90d"].isna() == out["target_return_90d"].isna()).all()


def test_pct_is_expm1_of_log_and_shift_equivalence_on_full_grid():
    bars = gbm(3000, H, seed=3)
    out = compute_targets(bars, bar=H, horizons={"1h": H, "1d": D, "3d": 3 * D})
    for name, n in [("1h", 1), ("1d", 24), ("3d", 72)]:
        r = out[f"target_return_{name}"]
        np.testing.assert_allclose(r, np.log(bars["close"].shift(-n) / bars["close"]), rtol=1e-14)
        np.testing.assert_allclose(out[f"target_return_pct_{name}"], np.expm1(r) * 100,
                                   rtol=1e-9, atol=1e-12)
        assert r.isna().sum() == n and r.iloc[-n:].isna().all()


def test_default_horizons_per_bar():
    cols = lambda out: [c[14:] for c in out if c.startswith("target_return_") and "pct" not in c]  # noqa: E731
    assert list(DEFAULT_TARGET_HORIZONS) == ["1h", "1d", "3d", "5d", "90d"]
    assert cols(compute_targets(gbm(10, H), bar=H)) == ["1h", "1d", "3d", "5d", "90d"]
    assert cols(compute_targets(gbm(10, pd.Timedelta("5min")), bar=pd.Timedelta("5min"))) == [
        "1h", "1d", "3d", "5d", "90d"]
    assert cols(compute_targets(gbm(10, D), bar=D)) == ["1d", "3d", "5d", "90d"]
    out = compute_targets(gbm(10, D), bar=D)
    assert "target_price_90d" in out and "target_label_1d" in out
    with pytest.raises(ValueError, match="whole number of bars"):
        compute_targets(gbm(10, D), bar=D, horizons={"1h": H})
    with pytest.raises(ValueError, match="label_horizon"):
        compute_targets(gbm(10, H), bar=H, horizons=["1h"])
    assert "target_label_1d" not in compute_targets(gbm(10, H), bar=H, horizons=["1h"], label_horizon=None)


# ---------------------------------------------------------------- labels

def test_label_boundaries_inclusive():
    """buy iff r >= +2%, sell iff r <= -2% (both inclusive, simple return), hold strictly between."""
    entry = [100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 50.0, 200.0, 144.5, 144.5, 100.0]
    exit_ = [102.0, 98.0, 101.999, 98.001, 102.001, 97.999, 51.0, 196.0, 147.39, 141.61, 100.0]
    expect = ["buy", "sell", "hold", "hold", "buy", "sell", "buy", "sell", "buy", "sell", "hold"]
    # one symbol per case: entry at 00:00, exit at the next day's 00:00
    pairs = enumerate(zip(entry, exit_, strict=True))
    frames = [hourly([0, 24], [e, x], symbol=f"S{i}") for i, (e, x) in pairs]
    out = compute_targets(pd.concat(frames, ignore_index=True), bar=H, horizons=["1d"])
    first = out[out["ts"] == T0]
    assert first["target_label_1d"].tolist() == expect
    # exactly +-2% sits on the boundary even where float arithmetic rounds it inside (+-1.99999..%)
    assert 147.39 / 144.5 - 1 < 0.02 and 141.61 / 144.5 - 1 > -0.02
    assert out.loc[out["ts"] == T0 + D, "target_label_1d"].isna().all()
    assert set(LABELS) == {"sell", "hold", "buy"}


def test_label_threshold_and_horizon_configurable():
    bars = hourly([0, 1, 24, 25, 48], [100, 100, 104, 106, 110])
    out = compute_targets(bars, bar=H, horizons=["1h", "1d"], label_threshold=0.05)
    # 1d: 100 -> 104 (+4%) hold at 5%, 100 -> 106 (+6%) buy
    assert out["target_label_1d"].tolist() == ["hold", "buy", "buy", None, None]
    out = compute_targets(bars, bar=H, horizons=["1h", "1d"], label_horizon="1h", label_threshold=0.01)
    assert out["target_label_1h"].tolist() == ["hold", None, "buy", None, None]
    np.testing.assert_array_equal(label_returns([0.02, -0.02, 0.0199, np.nan, -0.5]),
                                  np.array(["buy", "sell", "hold", None, "sell"], dtype=object))
    with pytest.raises(ValueError, match="label_threshold"):
        compute_targets(bars, bar=H, horizons=["1d"], label_threshold=0)


# ---------------------------------------------------------------- entry at t+1

def test_entry_t_plus_1_shifts_by_one_bar():
    bars = gbm(500, H, seed=4)
    hz = {"1h": H, "1d": D}
    t0 = compute_targets(bars, bar=H, horizons=hz)
    t1 = compute_targets(bars, bar=H, horizons=hz, entry="close_t+1")
    # row t with entry at t+1 is row t+1 with entry at t
    for col in ["target_entry_price", "target_return_1h", "target_return_pct_1d", "target_label_1d"]:
        pd.testing.assert_series_equal(t1[col].iloc[:-1].reset_index(drop=True),
                                       t0[col].iloc[1:].reset_index(drop=True), check_names=False)
    assert t1[["target_return_1h", "target_return_1d"]].iloc[-1].isna().all()
    assert t1["target_return_1d"].isna().sum() == 25 and t0["target_return_1d"].isna().sum() == 24
    np.testing.assert_array_equal(t1["close"], bars["close"])  # `close` stays bar t's own close


def test_entry_t_plus_1_hand_built_with_gap():
    # 00 01 02 .. 04: the bar 03:00 is missing
    out = compute_targets(hourly([0, 1, 2, 4, 5], [100, 110, 121, 150, 165]), bar=H,
                          horizons=["1h", "2h"], entry="close_t+1", label_horizon="1h")
    nan = np.nan
    np.testing.assert_array_equal(out["target_entry_price"], [110, 121, nan, 165, nan])
    np.testing.assert_allclose(out["target_return_1h"],
                               [np.log(121 / 110), nan, nan, nan, nan], rtol=1e-15)
    np.testing.assert_allclose(out["target_return_2h"],
                               [nan, np.log(150 / 121), nan, nan, nan], rtol=1e-15)
    assert out["target_label_1h"].tolist() == ["buy", None, None, None, None]
    with pytest.raises(ValueError, match="entry"):
        compute_targets(hourly([0], [1]), bar=H, horizons=["1h"], entry="open_t+1", label_horizon=None)


# ---------------------------------------------------------------- filled bars, symbols, input checks

def test_filled_bars_from_an_outage():
    """1m candles with a 3h outage: targets entering or exiting on a filled hour are NaN by default."""
    rng = np.random.default_rng(5)
    n = 2 * 1440
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    m = pd.DataFrame({"ts": T0 + pd.to_timedelta(np.arange(n), unit="min"), "symbol": "BTC-USD",
                      "open": close, "high": close, "low": close, "close": close, "volume": 1.0,
                      "source": "coinbase"})
    m = m[(m["ts"] < T0 + 5 * H) | (m["ts"] >= T0 + 8 * H)]            # no trades 05:00-08:00
    bars = resample_ohlcv(m, "1h", T0, T0 + 2 * D)
    assert bars["is_filled"].tolist()[4:9] == [False, True, True, True, False]

    out = compute_targets(bars, bar=H, horizons=["1h", "3h"], label_horizon=None)
    filled_hours = [5, 6, 7]
    hour = ((out["ts"] - T0) // H).to_numpy()
    for name, k in [("1h", 1), ("3h", 3)]:
        expect_nan = np.isin(hour, filled_hours) | np.isin(hour + k, filled_hours) | (hour + k >= 48)
        assert (out[f"target_return_{name}"].isna().to_numpy() == expect_nan).all(), name
    assert np.isnan(out.loc[4, "target_return_3h"])           # 04:00 -> 07:00 (filled): NaN
    assert np.isnan(out.loc[4, "target_return_pct_1h"])       # 04:00 -> 05:00 (filled): NaN
    assert np.isfinite(out.loc[3, "target_return_1h"]) and np.isfinite(out.loc[8, "target_return_1h"])

    kept = compute_targets(bars, bar=H, horizons=["1h", "3h"], label_horizon=None, use_filled_bars=True)
    assert kept["target_return_3h"].isna().sum() == 3                   # only the series' end
    np.testing.assert_array_equal(kept["target_return_1h"],
                                  compute_forward_returns(bars, {"1h": 1}, H)["target_return_1h"])


def test_symbols_never_mix_and_row_order_kept():
    a = hourly([0, 1, 2], [100, 101, 102], symbol="BTC-USD")
    b = hourly([0, 1, 3], [10, 20, 30], symbol="ETH-USD")
    both = pd.concat([a, b], ignore_index=True).iloc[[5, 0, 3, 2, 4, 1]]
    out = compute_targets(both, bar=H, horizons=["1h"], label_horizon=None)
    assert out["symbol"].tolist() == both["symbol"].tolist() and out["ts"].tolist() == both["ts"].tolist()
    got = dict(zip(zip(out["symbol"], (out["ts"] - T0) // H, strict=True), out["target_return_1h"],
                   strict=True))
    assert got[("BTC-USD", 1)] == pytest.approx(np.log(102 / 101))
    assert got[("ETH-USD", 0)] == pytest.approx(np.log(2))
    assert np.isnan(got[("ETH-USD", 1)]) and np.isnan(got[("BTC-USD", 2)])


def test_input_checks():
    bars = hourly([0, 1], [1, 2])
    with pytest.raises(ValueError, match="duplicate"):
        compute_targets(pd.concat([bars, bars]), bar=H, horizons=["1h"], label_horizon=None)
    naive = bars.assign(ts=bars["ts"].dt.tz_localize(None))
    with pytest.raises(ValueError, match="timezone"):
        compute_targets(naive, bar=H, horizons=["1h"], label_horizon=None)
    with pytest.raises(ValueError, match="positive"):
        compute_targets(bars, bar=H, horizons={"x": -H}, label_horizon=None)
    us = bars.assign(ts=bars["ts"].astype("datetime64[us, UTC]"))
    out = compute_targets(us, bar=H, horizons=["1h"], label_horizon=None)
    assert out["target_return_1h"].iloc[0] == pytest.approx(np.log(2))
    assert str(out["ts"].dtype) == "datetime64[us, UTC]"


# ---------------------------------------------------------------- lookahead and completeness

def test_lookahead_values():
    assert lookahead(DEFAULT_TARGET_HORIZONS, H) == 90 * D
    assert lookahead(["1h", "1d"], H, entry="close_t+1") == D + H
    assert lookahead({"90d": 90 * D}, D) == 90 * D
    assert lookahead_partitions(["1d"], H) == 1
    assert lookahead_partitions(["1d"], H, entry="close_t+1") == 2
    assert lookahead_partitions(["1h"], H) == 1           # 23:00's 1h target reads D+1 00:00
    assert lookahead_partitions(["90d"], D) == 90
    assert lookahead_partitions(["90d"], D, entry="close_t+1") == 91
    assert lookahead_partitions(DEFAULT_TARGET_HORIZONS, H) == 90
    assert lookahead_partitions(["4h"], H, partition=pd.Timedelta("4h")) == 1


@pytest.mark.parametrize("bar,horizons,entry", [
    (H, ["1h", "1d"], "close_t"), (H, ["1h", "1d"], "close_t+1"), (H, ["3d"], "close_t"),
    (D, ["1d", "5d"], "close_t+1"), (pd.Timedelta("4h"), ["1d"], "close_t"),
])
def test_lookahead_partitions_are_exactly_enough(bar, horizons, entry):
    """Day D's targets are complete with k = lookahead_partitions days after D, not with k - 1."""
    k = lookahead_partitions(horizons, bar, entry=entry)
    day = T0 + 2 * D
    bars = gbm(int((k + 5) * D / bar), bar, start=T0)
    on_day = lambda out: out[(out["ts"] >= day) & (out["ts"] < day + D)]  # noqa: E731
    for extra, complete in [(k, True), (k - 1, False)]:
        upto = bars[bars["ts"] < day + (1 + extra) * D]
        out = compute_targets(upto, bar=bar, horizons=horizons, entry=entry, label_horizon=None)
        assert bool(targets_complete(on_day(out), horizons)) is complete, extra
    # and the reach is `lookahead` after the decision (the close of the bar): the exit bar closes then
    la = lookahead(horizons, bar, entry=entry)
    out = compute_targets(bars, bar=bar, horizons=horizons, entry=entry, label_horizon=None)
    last = bars["ts"].iloc[-1]
    complete = targets_complete(out, horizons).rows
    assert (complete == (bars["ts"] + la <= last)).all()


def test_targets_complete_report():
    hours = [0, 1, 2, 4, 5, 25, 26]
    out = compute_targets(hourly(hours, [100, 101, 99, 104, 103, 110, 90]), bar=H,
                          horizons={"1h": H, "1d": D})
    rep = targets_complete(out)
    assert rep.columns == ("target_return_1h", "target_return_pct_1h", "target_return_1d",
                           "target_return_pct_1d", "target_label_1d")
    assert rep.rows.tolist() == [False, True, False, False, False, False, False]
    assert (rep.n_rows, rep.n_complete, rep.all_complete, bool(rep)) == (7, 1, False, False)
    assert rep.missing == {"target_return_1h": 3, "target_return_pct_1h": 3, "target_return_1d": 5,
                           "target_return_pct_1d": 5, "target_label_1d": 5}
    only_1h = targets_complete(out, ["1h"])
    assert only_1h.rows.tolist() == [True, True, False, True, False, True, False]
    assert bool(targets_complete(out.iloc[[1]], ["1h", "1d"]))
    with pytest.raises(ValueError, match="lack"):
        targets_complete(out, ["3d"])


# ---------------------------------------------------------------- real data with outages

def test_real_hourly_outage_gaps_give_nan_not_a_wrong_row():
    path = shared_data("hourly_binance_freqtrade", "BTC_USDT-1h.json.gz")
    rows = json.loads(gzip.decompress(path.read_bytes()))
    bars = pd.DataFrame(rows, columns=["ms", "open", "high", "low", "close", "volume"])
    bars.insert(0, "ts", pd.to_datetime(bars.pop("ms"), unit="ms", utc=True))
    bars.insert(1, "symbol", "BTC-USDT")
    gaps = bars["ts"].diff() > H
    assert gaps.sum() == 27

    out = compute_targets(bars, bar=H)
    ns = bars["ts"].astype("int64").to_numpy()
    close = bars["close"].to_numpy()
    for name, h in DEFAULT_TARGET_HORIZONS.items():
        target = ns + h.value
        pos = np.searchsorted(ns, target).clip(max=len(ns) - 1)
        found = ns[pos] == target
        r = out[f"target_return_{name}"].to_numpy()
        assert (np.isnan(r) == ~found).all(), name
        np.testing.assert_allclose(r[found], np.log(close[pos[found]] / close[found]), rtol=1e-15)
        # rows whose exit hour falls in an outage exist beyond the series' tail, and are NaN there
        inside = ~found & (target <= ns[-1])
        assert inside.sum() >= 27 * (1 if name == "1h" else 2), name
        # positional shifting would have filled exactly those rows from a later, wrong bar
        n = h // H
        assert np.isfinite(np.log(np.roll(close, -n) / close)[inside]).all()

    # the 34h outage after 2018-02-08 00:00 (bars resume 2018-02-09 10:00)
    at = out.set_index("ts")
    before = pd.Timestamp("2018-02-08 00:00", tz=UTC)
    resume = before + pd.Timedelta("34h")
    assert resume in at.index and (before + H) not in at.index and (resume - H) not in at.index
    assert at.loc[before, ["target_return_1h", "target_return_1d"]].isna().all()
    row = at.loc[before - D]                                              # exit: the last bar before
    assert row["target_return_1d"] == pytest.approx(np.log(at.loc[before, "close"] / row["close"]), rel=1e-15)
    assert np.isnan(at.loc[before - D + H, "target_return_1d"])           # exit inside the outage
    row = at.loc[resume]
    expected = np.log(at.loc[resume + H, "close"] / row["close"])
    assert row["target_return_1h"] == pytest.approx(expected, rel=1e-15)
    labels = out["target_label_1d"]
    assert (labels.isna() == out["target_return_1d"].isna()).all()
    assert set(labels.dropna()) == {"sell", "hold", "buy"}
    assert (out.loc[labels == "buy", "target_return_pct_1d"] >= 2 - 1e-10).all()
    assert (out.loc[labels == "sell", "target_return_pct_1d"] <= -2 + 1e-10).all()
    assert (out.loc[labels == "hold", "target_return_pct_1d"].abs() < 2).all()
    rep = targets_complete(out)
    assert 0 < rep.n_complete < len(out) and not rep
    assert out["target_return_90d"].iloc[-90 * 24:].isna().all()


def test_forward_high_low_span_the_bars_after_entry_and_need_every_one():
    close = [100, 101, 103, 99, 104, 98, 100]
    bars = hourly([0, 1, 2, 3, 4, 5, 6], close, high=[c + 1 for c in close], low=[c - 1 for c in close])
    bars = bars.drop(index=[5]).reset_index(drop=True)  # hour 5 missing
    out = compute_targets(bars, bar=H, horizons=["1h", "3h"], label_horizon=None, range_horizons=["3h"])
    # hour 0 enters at its close: bars 1..3 follow (highs 102, 104, 100; lows 100, 102, 98)
    assert out.loc[0, "target_high_3h"] == 104 and out.loc[0, "target_low_3h"] == 98
    assert out.loc[1, "target_high_3h"] == 105 and out.loc[1, "target_low_3h"] == 98
    # hours 2, 3 and 4 reach the missing hour 5: unknown, never a range over fewer bars
    assert out.loc[2:4, "target_high_3h"].isna().all() and out.loc[2:4, "target_low_3h"].isna().all()
    late = compute_targets(bars, bar=H, horizons=["3h"], entry="close_t+1", label_horizon=None,
                           range_horizons=["3h"])
    assert late.loc[0, "target_high_3h"] == 105  # entered at hour 1's close: bars 2..4
