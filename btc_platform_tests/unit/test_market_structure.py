"""Funding (known at the period end), its trailing 7-day stats over known events only, perp-spot basis
and CoinAPI divergence at the same closed bar, and the reasons for missing inputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from btc_platform.features.alignment import decision_times
from btc_platform.features.market_structure import (
    MARKET_STRUCTURE_COLUMNS,
    REASON_COLUMNS,
    funding_stats,
    market_structure_features,
)
from btc_platform_tests.conftest import shared_data

UTC = "UTC"
H = pd.Timedelta(hours=1)
P = pd.Timedelta(hours=8)


def ts(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz=UTC)


def hourly_bars(start: str, end: str, symbol: str = "BTC-USD", seed: int = 0) -> pd.DataFrame:
    t = pd.date_range(start, end, freq="h", tz=UTC, inclusive="left")
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"ts": t, "symbol": symbol, "close": 40000 + rng.normal(size=len(t)).cumsum() * 50})


def funding_frame(start: str, n: int, symbol: str = "BTC-USDT-PERP", seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "ts": pd.date_range(start, periods=n, freq="8h", tz=UTC),
        "symbol": symbol,
        "symbol_id": "BINANCEFTS_PERP_BTC_USDT",
        "funding_rate": 1e-4 + rng.normal(size=n) * 5e-5,
        "source": "coinapi",
        "ingested_at": ts("2025-01-01"),
    })


def reference_funding(funding: pd.DataFrame, decided: pd.Timestamp, *, min_events=6, max_age=pd.Timedelta(hours=24)):
    """Brute force: only rates whose period ended by the decision time."""
    known = funding.assign(at=funding["ts"] + P)
    known = known[known["at"] <= decided].sort_values("at")
    if known.empty or decided - known["at"].iloc[-1] > max_age:
        return np.nan, np.nan, np.nan
    last = known["at"].iloc[-1]
    window = known[known["at"] > last - pd.Timedelta(days=7)]["funding_rate"]
    rate = known["funding_rate"].iloc[-1]
    if len(window) < min_events:
        return rate, np.nan, np.nan
    std = window.std()
    flat = not std > 1e-6 * abs(window.mean())
    return rate, window.mean(), (np.nan if flat else (rate - window.mean()) / std)


def test_funding_known_only_at_period_end():
    f = funding_frame("2024-03-01 00:00", 3)
    # bar 06:00-07:00 decides at 07:00: the 00:00-08:00 rate is not known yet
    bars = pd.DataFrame({"ts": [ts("2024-03-01 06:00"), ts("2024-03-01 07:00"), ts("2024-03-01 15:00")],
                         "symbol": "BTC-USD", "close": 1.0})
    out = market_structure_features(bars, funding=f, bar=H)
    assert np.isnan(out["funding_rate"].iloc[0])
    assert out["funding_rate_missing_reason"].iloc[0] == "no_data"
    assert out["funding_rate"].iloc[1] == f["funding_rate"].iloc[0]  # decided at 08:00, the period's end
    assert out["funding_rate_age_hours"].iloc[1] == 0
    assert out["funding_rate"].iloc[2] == f["funding_rate"].iloc[1]
    assert out["funding_rate_missing_reason"].iloc[1] is None


def test_funding_stats_match_brute_force_and_use_no_later_rate():
    f = funding_frame("2024-03-01", 60)
    f = f.drop(index=[20, 21, 22, 23])  # a hole longer than the 24 h max age
    bars = hourly_bars("2024-03-01", "2024-03-21")
    out = market_structure_features(bars, funding=f, bar=H)
    decided = decision_times(bars, bar=H)
    for i in range(0, len(bars), 7):
        rate, mean, z = reference_funding(f, decided.iloc[i])
        np.testing.assert_allclose(
            out.loc[i, ["funding_rate", "funding_rate_mean_7d", "funding_rate_zscore_7d"]].to_numpy(float),
            [rate, mean, z], rtol=1e-9, err_msg=str(decided.iloc[i]))
    assert out["funding_rate_zscore_7d"].notna().sum() > 200
    assert (out["funding_rate_missing_reason"] == "stale").any()
    # truncation: change every rate not yet known at T; bars decided by T do not move
    for cut in [ts("2024-03-03 08:00"), ts("2024-03-09 12:00"), ts("2024-03-15 16:00")]:
        later = (f["ts"] + P) > cut
        changed = f.assign(funding_rate=f["funding_rate"].where(~later, 0.05))
        again = market_structure_features(bars, funding=changed, bar=H)
        early = (decided <= cut).to_numpy()
        pd.testing.assert_frame_equal(again.loc[early], out.loc[early])
        assert not again.loc[~early, "funding_rate"].equals(out.loc[~early, "funding_rate"])


def test_funding_stats_per_asset():
    f = pd.concat([funding_frame("2024-03-01", 30), funding_frame("2024-03-01", 30, "ETH-USDT-PERP", seed=9)])
    stats = funding_stats(f)
    assert set(stats["asset"]) == {"BTC", "ETH"}
    bars = pd.concat([hourly_bars("2024-03-05", "2024-03-06"), hourly_bars("2024-03-05", "2024-03-06", "ETH-USD")],
                     ignore_index=True)
    out = market_structure_features(bars, funding=f, bar=H)
    eth = f[f["symbol"] == "ETH-USDT-PERP"]
    decided = decision_times(bars, bar=H)
    for i in [30, 40]:
        assert out.loc[i, "symbol"] == "ETH-USD"
        assert out.loc[i, "funding_rate"] == reference_funding(eth, decided.iloc[i])[0]


def test_basis_and_divergence_at_the_same_closed_bar():
    bars = hourly_bars("2024-03-01", "2024-03-02")
    perp = bars.assign(symbol="BTC-USDT-PERP", close=bars["close"] * 1.001).iloc[:-2]
    spot = bars.assign(close=bars["close"] / 1.002)
    out = market_structure_features(bars, perp=perp, coinapi_spot=spot, bar=H)
    np.testing.assert_allclose(out["perp_spot_basis"].iloc[:-2], 0.001, rtol=1e-9)
    assert out["perp_spot_basis"].iloc[-2:].isna().all()
    assert out["perp_spot_basis_missing_reason"].iloc[-2:].tolist() == ["no_data", "no_data"]
    np.testing.assert_allclose(out["coinapi_spot_divergence"], 0.002, rtol=1e-9)
    assert out["coinapi_spot_divergence_missing_reason"].isna().all()
    # the basis never uses a later perp bar: shifting the perp frame by one bar changes every value
    shifted = perp.assign(ts=perp["ts"] + H)
    moved = market_structure_features(bars, perp=shifted, bar=H)
    assert not np.allclose(moved["perp_spot_basis"].iloc[1:-2], 0.001)
    minute_perp = perp.assign(ts=pd.date_range("2024-03-01", periods=len(perp), freq="min", tz=UTC))
    with pytest.raises(ValueError, match="resample perp"):
        market_structure_features(bars, perp=minute_perp, bar=H)


def test_missing_inputs_give_null_columns_and_reasons():
    bars = hourly_bars("2024-03-01", "2024-03-02")
    out = market_structure_features(bars, missing_reasons={"funding": "not_entitled", "perp": "no_credentials"})
    assert list(out.columns) == ["ts", "symbol"] + MARKET_STRUCTURE_COLUMNS + REASON_COLUMNS
    assert out[MARKET_STRUCTURE_COLUMNS].isna().all().all()
    assert (out["funding_rate_missing_reason"] == "not_entitled").all()
    assert (out["perp_spot_basis_missing_reason"] == "no_credentials").all()
    assert (out["coinapi_spot_divergence_missing_reason"] == "not_provided").all()
    empty = market_structure_features(bars, funding=funding_frame("2024-03-01", 0), bar=H,
                                      missing_reasons={"funding": "no_data"})
    assert (empty["funding_rate_missing_reason"] == "no_data").all()


def test_real_binance_funding_with_jitter():
    raw = json.loads(shared_data("funding_binance_freqtrade", "XRP_USDT-8h-funding_rate.json").read_text())
    settled = pd.to_datetime([r[0] for r in raw], unit="ms", utc=True)  # funding time = the period end
    f = pd.DataFrame({"ts": settled - P, "symbol": "XRP-USDT-PERP", "funding_rate": [r[1] for r in raw]})
    bars = hourly_bars("2021-11-18", "2021-12-19", "XRP-USD")
    out = market_structure_features(bars, funding=f, bar=H)
    decided = decision_times(bars, bar=H)
    for i in range(0, len(bars), 5):
        rate, mean, z = reference_funding(f, decided.iloc[i])
        np.testing.assert_allclose(
            out.loc[i, ["funding_rate", "funding_rate_mean_7d", "funding_rate_zscore_7d"]].to_numpy(float),
            [rate, mean, z], rtol=1e-9, atol=1e-15, err_msg=str(decided.iloc[i]))
    # a settlement a few ms after 08:00 is not known to the bar deciding at 08:00 exactly
    first = settled[1]
    assert first > first.floor("h")
    row = out[decided == first.floor("h")].iloc[0]
    assert row["funding_rate"] == raw[0][1] and row["funding_rate_age_hours"] < 8.01
    assert out["funding_rate"].notna().mean() > 0.95
