"""A cost-aware, vectorised backtest of -1/0/+1 positions on hourly bars, and its baselines.

Convention: `frame` holds one row per (symbol, ts). `ts` is the decision time (a bar's close);
the row's position is held from that close to the next bar's close and earns the row's realized
LOG return `r` over that bar, as the simple return `p * (exp(r) - 1)`. Per symbol, in time order,
the units traded on a row are `|p_i - p_{i-1}|` (with `p_{-1} = 0`), plus `|p_i|` when the row
ends a run: the symbol's last row, or a row followed by a gap of more than one bar, where the
position is closed (the next row re-enters from flat); rows with a NaN return are dropped, so they
count as missing bars. Every unit traded pays the taker fee and the slippage, both per side:
`Costs.per_unit = (fee_bps + slippage_bps) / 1e4`, so a long round trip costs two fills.
Symbols are weighted equally among those present at each ts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

HOUR = pd.Timedelta(hours=1)


def bars_per_year(bar: pd.Timedelta = HOUR) -> float:
    """Bars in a 365-day year; crypto trades 24/7 (8760 for hourly bars)."""
    return pd.Timedelta(days=365) / pd.Timedelta(bar)


BARS_PER_YEAR = bars_per_year(HOUR)


@dataclass(frozen=True)
class Costs:
    """Per-side trading costs in basis points, charged on every fill (entry, exit and flip legs)."""

    fee_bps: float = 10.0
    slippage_bps: float = 2.0

    @property
    def per_unit(self) -> float:
        """Fraction of equity paid per unit of position traded."""
        return (self.fee_bps + self.slippage_bps) / 1e4


@dataclass
class BacktestResult:
    """Portfolio figures of one backtest; `equity` is indexed by ts (value after that ts's bar)."""

    equity: pd.Series
    returns: pd.Series = field(repr=False)
    total_return: float
    sharpe: float
    max_drawdown: float
    turnover: float
    hit_rate: float
    bars: int
    exposure: float
    fees_paid: float

    def to_dict(self) -> dict:
        """Plain floats/ints, and the equity curve as two lists (ISO timestamps, values)."""
        out = {k: getattr(self, k) for k in
               ("total_return", "sharpe", "max_drawdown", "turnover", "hit_rate", "exposure", "fees_paid")}
        out = {k: float(v) for k, v in out.items()}
        out["bars"] = int(self.bars)
        out["equity_ts"] = [pd.Timestamp(t).isoformat() for t in self.equity.index]
        out["equity"] = [float(v) for v in self.equity.to_numpy()]
        return out


def positions_from_predictions(pred: np.ndarray, threshold: float) -> np.ndarray:
    """+1 where pred > threshold, -1 where pred < -threshold, else 0 (NaN predictions are flat)."""
    pred = np.asarray(pred, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(pred > threshold, 1.0, np.where(pred < -threshold, -1.0, 0.0))


def sharpe_ratio(returns: np.ndarray, periods: float = BARS_PER_YEAR) -> float:
    """Annualised mean/std (ddof=1) of per-bar returns. A constant series has no risk to scale by:
    0.0 when it is all zeros (e.g. always flat), NaN otherwise; NaN with fewer than two bars."""
    returns = np.asarray(returns, dtype=np.float64)
    if len(returns) < 2:
        return math.nan
    mean, std = returns.mean(), returns.std(ddof=1)
    if std == 0 or not np.isfinite(std):
        return 0.0 if mean == 0 else math.nan
    return float(mean / std * math.sqrt(periods))


def backtest(frame: pd.DataFrame, position_col: str = "position", return_col: str = "realized_return",
             costs: Costs = Costs(), bar: pd.Timedelta = HOUR) -> BacktestResult:
    """Backtest `frame[position_col]` against `frame[return_col]` (see the module docstring).

    Rows whose realized return is NaN (the outcome is unknown, e.g. the last bar of a split) are
    dropped first and so count as missing bars: a position held across them is closed and re-opened
    like at any gap. A NaN position is flat."""
    df = frame[["symbol", "ts", position_col, return_col]].copy()
    df.columns = ["symbol", "ts", "p", "r"]
    df = df[np.isfinite(df["r"].to_numpy(dtype=np.float64))]
    df["p"] = df["p"].astype(np.float64).fillna(0.0)
    if df.duplicated(["symbol", "ts"]).any():
        raise ValueError("more than one row per (symbol, ts)")
    df = df.sort_values(["symbol", "ts"], kind="mergesort").reset_index(drop=True)
    by = df.groupby("symbol", sort=False)
    step = by["ts"].diff()
    starts = step.isna() | (step > pd.Timedelta(bar))  # a symbol's first row, or the first after a gap
    ends = starts.shift(-1, fill_value=True)  # last row of a run: close out after it
    prev = by["p"].shift(1).where(~starts, 0.0)
    traded = (df["p"] - prev).abs() + df["p"].abs().where(ends, 0.0)
    cost = traded * costs.per_unit
    net = df["p"] * np.expm1(df["r"]) - cost
    per_ts = pd.DataFrame({"ts": df["ts"], "net": net, "cost": cost}).groupby("ts").mean()
    port = per_ts["net"]
    equity = (1.0 + port).cumprod()
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity.to_numpy()]))[1:]
    in_pos = df["p"] != 0
    return BacktestResult(
        equity=equity,
        returns=port,
        total_return=float(equity.iloc[-1] - 1.0) if len(equity) else 0.0,
        sharpe=sharpe_ratio(port.to_numpy(), bars_per_year(bar)),
        max_drawdown=float(max(0.0, np.max(1.0 - equity.to_numpy() / peak))) if len(equity) else 0.0,
        turnover=float(traded.mean()) if len(df) else 0.0,
        hit_rate=float((net[in_pos] > 0).mean()) if in_pos.any() else math.nan,
        bars=int(len(port)),
        exposure=float(in_pos.mean()) if len(df) else 0.0,
        fees_paid=float(per_ts["cost"].sum()),
    )


def choose_threshold(pred_val: np.ndarray, frame_val: pd.DataFrame, costs: Costs = Costs(),
                     quantiles: Sequence[float] = (0, .5, .6, .7, .8, .9, .95),
                     return_col: str = "realized_return", bar: pd.Timedelta = HOUR) -> float:
    """The |prediction| threshold with the best validation Sharpe (ties -> the larger threshold).

    Candidates are the `quantiles` of |pred_val| (finite values). Only validation data is seen
    here: choose the threshold on validation, then apply it unchanged to test."""
    pred_val = np.asarray(pred_val, dtype=np.float64)
    finite = np.abs(pred_val[np.isfinite(pred_val)])
    if not len(finite):
        raise ValueError("no finite validation predictions")
    best, best_sharpe = math.nan, -math.inf
    for th in sorted(set(np.quantile(finite, list(quantiles)).tolist())):
        val = frame_val.assign(position=positions_from_predictions(pred_val, th))
        s = backtest(val, "position", return_col, costs, bar).sharpe
        s = -math.inf if math.isnan(s) else s
        if s >= best_sharpe:  # ascending candidates: ">=" lets the larger threshold win ties
            best, best_sharpe = th, s
    return float(best)


def buy_and_hold(frame: pd.DataFrame, costs: Costs = Costs(), return_col: str = "realized_return",
                 bar: pd.Timedelta = HOUR) -> BacktestResult:
    """Long every symbol on every row: pays the entry and the final exit fill only (per run of
    consecutive bars; a gap in the data closes and re-opens as in `backtest`)."""
    return backtest(frame.assign(position=1.0), "position", return_col, costs, bar)


def flat(frame: pd.DataFrame, costs: Costs = Costs(), return_col: str = "realized_return",
         bar: pd.Timedelta = HOUR) -> BacktestResult:
    """Never in the market: zero return, zero Sharpe, zero drawdown."""
    return backtest(frame.assign(position=0.0), "position", return_col, costs, bar)
