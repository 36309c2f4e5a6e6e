"""Synthetic training tables following the marts.training_table_{1h,1d} contract, for dataset tests.

The next bar's log return is 0.003 * `kmid` + noise, so a model can learn target_return_1h.
"""

import numpy as np
import pandas as pd

HORIZON_BARS = {"1h": 1, "24h": 24, "3d": 72, "5d": 120, "90d": 2160}


def training_table(days: int = 30, symbols=("BTC-USD", "ETH-USD"), seed: int = 0, start: str = "2024-02-01",
                   bar: str = "1h") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    step = pd.Timedelta(bar)
    n = int(pd.Timedelta(days=days) / step)
    ts = pd.date_range(start, periods=n, freq=step, tz="UTC")
    frames = []
    for k, symbol in enumerate(symbols):
        kmid = rng.standard_normal(n)
        step_ret = np.r_[0.0, 0.003 * kmid[:-1] + 0.002 * rng.standard_normal(n - 1)]
        close = 100.0 * (k + 1) * 50 * np.exp(np.cumsum(step_ret))
        high = close * np.exp(np.abs(rng.normal(0, 0.004, n)))
        low = close * np.exp(-np.abs(rng.normal(0, 0.004, n)))
        s = pd.Series(close)
        f = pd.DataFrame({
            "symbol": symbol, "ts": ts, "decision_at": ts + step, "asset_symbol": symbol.split("-")[0],
            "asset_class": "crypto", "open": np.r_[close[0], close[:-1]], "high": high, "low": low,
            "close": close, "volume": rng.uniform(10, 100, n),
            # Every minute of every bar arrived (the marts carry each bar's coverage).
            "n_source_bars": int(step / pd.Timedelta("1min")), "bar_coverage": 1.0,
        })
        f["rsi_14"] = (50 + 15 * rng.standard_normal(n)).clip(1, 99)
        f["macd"] = s.ewm(span=12).mean() - s.ewm(span=26).mean()
        f["macd_signal"] = f["macd"].ewm(span=9).mean()
        f["sma_20"] = s.rolling(20).mean()
        f["sma_50"] = s.rolling(50).mean()
        f["sma_200"] = s.rolling(200).mean()
        f["volatility_30"] = pd.Series(np.log(close)).diff().rolling(30).std()
        f["volatility_30d"] = f["volatility_30"] * np.sqrt(24 * 365)
        f.loc[:13, "rsi_14"] = np.nan  # warm-up
        f["kmid"] = kmid
        f["adx_14"] = rng.uniform(10, 40, n)
        f["bb_pband"] = rng.uniform(-0.2, 1.2, n)
        f["volume_ratio_20"] = rng.uniform(0.5, 2.0, n)
        f["rsi_14_4h"] = (50 + 10 * rng.standard_normal(n)).clip(1, 99)
        f["vix"] = 15 + rng.standard_normal(n).cumsum() * 0.05
        f["vix_age_hours"] = rng.uniform(0, 30, n)
        f["vix_source"] = "fred:VIXCLS"
        f["gold_price"] = np.nan  # a series that is always missing
        f["gold_price_age_hours"] = np.nan
        f["fear_greed_index"] = rng.integers(5, 95, n).astype(float)
        f["funding_rate"] = rng.normal(0.0001, 0.0001, n)
        f["funding_rate_mean_7d"] = f["funding_rate"].rolling(21, min_periods=1).mean()
        f["funding_rate_missing_reason"] = None
        f["perp_spot_basis"] = rng.normal(0.0005, 0.0003, n)
        f["source"] = "coinbase"
        f["target_entry_price"] = close
        for name, h in HORIZON_BARS.items():
            future = s.shift(-h)
            f[f"target_return_{name}"] = np.log(future / s)
            f[f"target_return_pct_{name}"] = (future / s - 1) * 100
        f["target_price_90d"] = s.shift(-HORIZON_BARS["90d"])
        for name in ("24h", "90d"):
            r = f[f"target_return_pct_{name}"] / 100
            f[f"target_label_{name}"] = np.where(r >= 0.02, "buy", np.where(r <= -0.02, "sell", "hold"))
            f.loc[r.isna(), f"target_label_{name}"] = None
        ahead = pd.DataFrame({"h": high, "l": low})[::-1].rolling(24, min_periods=24)
        f["target_high_24h"] = ahead["h"].max()[::-1].shift(-1).to_numpy()
        f["target_low_24h"] = ahead["l"].min()[::-1].shift(-1).to_numpy()
        frames.append(f[f["target_return_1h"].notna() & f["target_return_24h"].notna()])
    return pd.concat(frames, ignore_index=True).sort_values(["symbol", "ts"]).reset_index(drop=True)
