"""Funding, perp-spot basis and cross-vendor price divergence on the bar grid, without look-ahead.

Decision time of a bar = its close `ts + bar` (see `alignment`). Per input:

| feature | inputs | known at | rule |
|---|---|---|---|
| `funding_rate` | CoinAPI funding frame (`ts` = 8 h period start) | `ts + funding_period` (period end) | latest rate known at the decision time, at most `funding_max_age` old (24 h: three missed periods) |
| `funding_rate_mean_7d`, `funding_rate_zscore_7d` | the same | the same | over the funding EVENTS known by then only: the rates whose period ended within the 7 days up to the latest known one ((t-7d, t], that rate included); z = (rate - mean) / std (ddof 1); NaN with fewer than `zscore_min_events` rates or a flat window (std <= 1e-6 x abs(mean)) |
| `perp_spot_basis` | CoinAPI perp OHLCV at the bars' interval | the same bar's close | `(perp_close - close) / close`, perp and spot bar of the SAME open ts, both closed at the decision time |
| `coinapi_spot_divergence` | CoinAPI spot OHLCV at the bars' interval | the same bar's close | `(close - coinapi_close) / coinapi_close` |

Matching: funding and perp rows match bars by base asset (`BTC-USDT-PERP` -> `BTC` <- `BTC-USD`);
CoinAPI spot rows by exact symbol (CoinAPI frames use our product ids). A perp or spot frame at another
interval than the bars raises (a 1-minute close is not the bar's close).

Missing inputs: the columns are always present; `<feature>_missing_reason` says why a value is NaN:
the caller's reason for that input (`missing_reasons={"funding": "not_entitled", ...}`, e.g.
"not_entitled", "no_credentials", "no_data"), else "not_provided" when the input is None, "stale"
when the latest funding rate is older than `funding_max_age`, "no_data" when the input has no row for
the bar; None where the value is present.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from btc_platform.features.alignment import (
    FUNDING_PERIOD,
    _NAT,
    _age_hours,
    _frame_head,
    asof_positions,
    decision_times,
    funding_available_at,
    infer_bar,
    to_utc_ns,
)

FUNDING_WINDOW = pd.Timedelta(days=7)
FUNDING_MAX_AGE = pd.Timedelta(hours=24)
ZSCORE_MIN_EVENTS = 6  # two days of 8-hourly rates
FLAT_STD_RELATIVE = 1e-6  # std <= 1e-6 * |mean|: the window is flat, no z-score

MARKET_STRUCTURE_COLUMNS = [
    "funding_rate", "funding_rate_mean_7d", "funding_rate_zscore_7d", "funding_rate_age_hours",
    "perp_spot_basis", "coinapi_spot_divergence",
]
REASON_COLUMNS = [
    "funding_rate_missing_reason", "perp_spot_basis_missing_reason", "coinapi_spot_divergence_missing_reason",
]
NOT_PROVIDED = "not_provided"
NO_DATA = "no_data"
STALE = "stale"


def base_asset(symbols: pd.Series) -> np.ndarray:
    """`BTC-USD`, `BTC-USDT-PERP`, `btc` -> `BTC`."""
    return symbols.astype(str).str.split("-").str[0].str.upper().to_numpy(dtype=object)


def funding_stats(funding: pd.DataFrame, *, period=FUNDING_PERIOD, window=FUNDING_WINDOW,
                  min_events: int = ZSCORE_MIN_EVENTS) -> pd.DataFrame:
    """Per funding event (sorted by asset and availability): `asset`, `available_at` (ns),
    `funding_rate`, and the trailing `funding_rate_mean_7d` / `funding_rate_zscore_7d` over the events
    of the same asset available in (available_at - window, available_at]."""
    f = funding.loc[funding["funding_rate"].notna()]
    f = pd.DataFrame({
        "asset": base_asset(f["symbol"]) if "symbol" in f.columns else np.full(len(f), "", dtype=object),
        "available_at": to_utc_ns(funding_available_at(f, period=period), "funding ts"),
        "funding_rate": f["funding_rate"].to_numpy("float64"),
    })
    f = f.drop_duplicates(["asset", "available_at"], keep="last")
    f = f.sort_values(["asset", "available_at"], kind="stable").reset_index(drop=True)
    mean = np.full(len(f), np.nan)
    std = np.full(len(f), np.nan)
    count = np.zeros(len(f))
    for _, idx in f.groupby("asset", sort=False).indices.items():
        s = pd.Series(f["funding_rate"].to_numpy()[idx], index=pd.to_datetime(f["available_at"].to_numpy()[idx]))
        roll = s.rolling(pd.Timedelta(window), min_periods=1)
        mean[idx], std[idx], count[idx] = roll.mean().to_numpy(), roll.std().to_numpy(), roll.count().to_numpy()
    enough = count >= min_events
    f["funding_rate_mean_7d"] = np.where(enough, mean, np.nan)
    # a flat window has no z-score; rolling variance leaves float noise (~1e-8 relative) there
    flat = ~(std > FLAT_STD_RELATIVE * np.abs(mean))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (f["funding_rate"].to_numpy() - mean) / std
    f["funding_rate_zscore_7d"] = np.where(enough & ~flat & np.isfinite(z), z, np.nan)
    return f


def _check_interval(frame: pd.DataFrame, bar: pd.Timedelta, name: str) -> None:
    for _, rows in frame.groupby("symbol", sort=False) if "symbol" in frame.columns else [(None, frame)]:
        if rows["ts"].nunique() < 2:
            continue
        got = infer_bar(rows["ts"])
        if got != bar:
            raise ValueError(f"{name} bars are {got}, the bars are {bar}: resample {name} to the bars' interval")


def _same_bar_close(bars: pd.DataFrame, t_open: np.ndarray, other: pd.DataFrame, name: str, step: pd.Timedelta,
                    key_bars, key_other) -> np.ndarray:
    """`other`'s close at the same open ts and key, NaN where absent; `other` must be on the bars'
    interval, and hold one symbol when the bars name none (a key could not tell them apart)."""
    _check_interval(other, step, name)
    if "symbol" not in bars.columns and "symbol" in other.columns and other["symbol"].nunique() > 1:
        raise ValueError(f"{name} holds several symbols but the bars have no symbol column")
    right = pd.DataFrame({"_k": key_other, "_ts": to_utc_ns(other["ts"], "ts"),
                          "_close": other["close"].to_numpy("float64")}).drop_duplicates(["_k", "_ts"], keep="last")
    left = pd.DataFrame({"_k": key_bars, "_ts": t_open})
    return left.merge(right, on=["_k", "_ts"], how="left")["_close"].to_numpy()


def _relative(value: np.ndarray, base: np.ndarray) -> np.ndarray:
    """(value - base) / base, NaN where either is missing or base is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        change = (value - base) / base
    return np.where(np.isfinite(change), change, np.nan)


def _reasons(value: np.ndarray, provided: bool, given: str | None, stale: np.ndarray | None = None) -> np.ndarray:
    missing = np.isnan(value)
    if given is not None:
        why = np.full(len(value), given, dtype=object)
    elif not provided:
        why = np.full(len(value), NOT_PROVIDED, dtype=object)
    else:
        why = np.full(len(value), NO_DATA, dtype=object)
        if stale is not None:
            why[stale] = STALE
    return np.where(missing, why, None)


def market_structure_features(
    bars: pd.DataFrame,
    *,
    funding: pd.DataFrame | None = None,
    perp: pd.DataFrame | None = None,
    coinapi_spot: pd.DataFrame | None = None,
    missing_reasons: Mapping[str, str] | None = None,
    bar=None,
    funding_period=FUNDING_PERIOD,
    funding_window=FUNDING_WINDOW,
    funding_max_age=FUNDING_MAX_AGE,
    zscore_min_events: int = ZSCORE_MIN_EVENTS,
) -> pd.DataFrame:
    """`MARKET_STRUCTURE_COLUMNS` and `REASON_COLUMNS` per bar (bars: `ts`, `close`, optionally
    `symbol`); `ts` (+ `symbol`) first, index and order of `bars` kept. `missing_reasons` maps
    "funding", "perp", "coinapi_spot" to the caller's reason for a missing input."""
    reasons = dict(missing_reasons or {})
    step = pd.Timedelta(bar) if bar is not None else infer_bar(bars["ts"])
    t_open = to_utc_ns(bars["ts"], "ts")
    t = to_utc_ns(decision_times(bars, bar=step), "decision time")
    close = bars["close"].to_numpy("float64")
    has_symbol = "symbol" in bars.columns
    asset = base_asset(bars["symbol"]) if has_symbol else np.full(len(bars), "", dtype=object)
    out = _frame_head(bars)
    n = len(bars)

    # funding: the latest rate known at the decision time, and its trailing stats
    rate = mean = z = age = np.full(n, np.nan)
    stale = np.zeros(n, dtype=bool)
    if funding is not None and len(funding):
        stats = funding_stats(funding, period=funding_period, window=funding_window, min_events=zscore_min_events)
        if not has_symbol and stats["asset"].nunique() > 1:
            raise ValueError("funding holds several assets but the bars have no symbol column")
        keys = (asset,), (stats["asset"].to_numpy(),)
        if not has_symbol:
            keys = None, None
        pos = asof_positions(t, stats["available_at"].to_numpy(), *keys)
        a = np.where(pos >= 0, stats["available_at"].to_numpy()[np.maximum(pos, 0)], _NAT)
        found = pos >= 0
        fresh = found & ((t - a) <= pd.Timedelta(funding_max_age).value)
        stale = found & ~fresh
        safe = np.maximum(pos, 0)
        rate = np.where(fresh, stats["funding_rate"].to_numpy()[safe], np.nan)
        mean = np.where(fresh, stats["funding_rate_mean_7d"].to_numpy()[safe], np.nan)
        z = np.where(fresh, stats["funding_rate_zscore_7d"].to_numpy()[safe], np.nan)
        age = _age_hours(t, a, fresh)
    out["funding_rate"] = rate
    out["funding_rate_mean_7d"] = mean
    out["funding_rate_zscore_7d"] = z
    out["funding_rate_age_hours"] = age

    # perp-spot basis at the same bar
    basis = np.full(n, np.nan)
    if perp is not None and len(perp):
        key_perp = base_asset(perp["symbol"]) if has_symbol else np.full(len(perp), "", dtype=object)
        basis = _relative(_same_bar_close(bars, t_open, perp, "perp", step, asset, key_perp), close)
    out["perp_spot_basis"] = basis

    # bars close vs CoinAPI spot close at the same bar
    div = np.full(n, np.nan)
    if coinapi_spot is not None and len(coinapi_spot):
        kb = bars["symbol"].astype(str).to_numpy(dtype=object) if has_symbol else np.full(n, "", dtype=object)
        ko = (coinapi_spot["symbol"].astype(str).to_numpy(dtype=object) if has_symbol
              else np.full(len(coinapi_spot), "", dtype=object))
        div = _relative(close, _same_bar_close(bars, t_open, coinapi_spot, "coinapi_spot", step, kb, ko))
    out["coinapi_spot_divergence"] = div

    out["funding_rate_missing_reason"] = _reasons(rate, funding is not None, reasons.get("funding"), stale)
    out["perp_spot_basis_missing_reason"] = _reasons(basis, perp is not None, reasons.get("perp"))
    out["coinapi_spot_divergence_missing_reason"] = _reasons(div, coinapi_spot is not None,
                                                             reasons.get("coinapi_spot"))
    return out


__all__ = [
    "FUNDING_MAX_AGE", "FUNDING_WINDOW", "MARKET_STRUCTURE_COLUMNS", "REASON_COLUMNS", "ZSCORE_MIN_EVENTS",
    "base_asset", "funding_stats", "market_structure_features",
]
