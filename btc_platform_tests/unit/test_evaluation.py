"""btc_platform.evaluation: a cost-aware backtest checked against hand arithmetic, the validation-only
threshold choice, the information coefficient and the leakage guard."""

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from btc_platform.evaluation.backtest import (BARS_PER_YEAR, Costs, backtest, bars_per_year, buy_and_hold,
                                              choose_threshold, flat, positions_from_predictions)
from btc_platform.evaluation.forecasts import information_coefficient, leakage_guard, numeric_report

T0 = pd.Timestamp("2024-01-01", tz="UTC")
H = pd.Timedelta(hours=1)
C = 12e-4  # 10 bps fee + 2 bps slippage per unit traded


def bars(returns, positions, symbol="BTC-USD", hours=None):
    hours = range(len(returns)) if hours is None else hours
    return pd.DataFrame({"symbol": symbol, "ts": [T0 + h * H for h in hours],
                         "position": positions, "realized_return": returns})


def approx(x):
    return pytest.approx(x, rel=1e-12, abs=1e-12)


def test_bars_per_year_and_positions():
    assert BARS_PER_YEAR == bars_per_year(H) == 8760
    assert bars_per_year(pd.Timedelta(days=1)) == 365
    pos = positions_from_predictions(np.array([0.3, -0.3, 0.1, -0.1, np.nan, 0.2]), 0.2)
    assert pos.tolist() == [1, -1, 0, 0, 0, 0]


def test_backtest_matches_hand_calculation():
    r = [0.01, -0.02, 0.005, -0.01, 0.03]
    res = backtest(bars(r, [1, 1, 0, -1, -1]), costs=Costs(fee_bps=10, slippage_bps=2))
    net = [
        +1 * (math.exp(0.01) - 1) - 1 * C,  # enter long: 1 fill
        +1 * (math.exp(-0.02) - 1) - 0 * C,  # hold
        0 * (math.exp(0.005) - 1) - 1 * C,  # exit long: 1 fill
        -1 * (math.exp(-0.01) - 1) - 1 * C,  # enter short: 1 fill
        -1 * (math.exp(0.03) - 1) - 1 * C,  # hold, then close out after the last bar: 1 fill
    ]
    equity = [1 + net[0]]
    for x in net[1:]:
        equity.append(equity[-1] * (1 + x))
    assert res.returns.tolist() == approx(net)
    assert res.equity.tolist() == approx(equity)
    assert list(res.equity.index) == [T0 + h * H for h in range(5)]
    assert res.total_return == approx(equity[-1] - 1)
    assert res.sharpe == approx(statistics.mean(net) / statistics.stdev(net) * math.sqrt(8760))
    assert equity[0] > 1 and max(equity) == equity[0]  # the peak is after bar 0, the trough is the end
    assert res.max_drawdown == approx(1 - equity[4] / equity[0])
    assert res.turnover == approx(4 / 5)
    assert res.hit_rate == approx(2 / 4)  # in position on bars 0, 1, 3, 4; bars 0 and 3 made money
    assert res.exposure == approx(4 / 5)
    assert res.fees_paid == approx(4 * C)
    assert res.bars == 5
    d = res.to_dict()
    assert d["bars"] == 5 and len(d["equity"]) == len(d["equity_ts"]) == 5
    assert all(type(d[k]) is float for k in ("total_return", "sharpe", "max_drawdown", "turnover"))


def test_two_symbols_are_equal_weighted_over_those_present():
    a = bars([0.01, 0.02, -0.01], [1, 1, 1], "BTC-USD")
    b = bars([0.03, -0.04], [-1, -1], "ETH-USD", hours=[1, 2])
    res = backtest(pd.concat([b, a]), costs=Costs())  # input order does not matter
    na = [math.exp(0.01) - 1 - C, math.exp(0.02) - 1, math.exp(-0.01) - 1 - C]
    nb = [-(math.exp(0.03) - 1) - C, -(math.exp(-0.04) - 1) - C]
    assert res.returns.tolist() == approx([na[0], (na[1] + nb[0]) / 2, (na[2] + nb[1]) / 2])
    assert res.fees_paid == approx(C + C / 2 + C)
    assert res.turnover == approx(4 / 5)


def test_a_gap_closes_the_position():
    res = backtest(bars([0.0, 0.0, 0.0], [1, 1, 1], hours=[0, 1, 3]), costs=Costs())
    # bar 0: entry; bar 1: close-out before the gap; bar 3: re-entry and the final close-out
    assert res.returns.tolist() == approx([-C, -C, -2 * C])
    assert res.fees_paid == approx(4 * C)


def test_rows_without_an_outcome_are_missing_bars():
    res = backtest(bars([0.0, 0.0, np.nan, 0.0, np.nan], [1, 1, 1, 1, np.nan]), costs=Costs())
    assert res.bars == 3 and res.returns.tolist() == approx([-C, -C, -2 * C])


def test_buy_and_hold_costs_two_fills_and_flat_is_zero():
    r = [0.01, -0.005, 0.002, 0.004]
    res = buy_and_hold(bars(r, 0), Costs())
    assert res.fees_paid == approx(2 * C)
    growth = [1 + math.expm1(0.01) - C, 1 + math.expm1(-0.005),
              1 + math.expm1(0.002), 1 + math.expm1(0.004) - C]
    assert res.total_return == approx(math.prod(growth) - 1)  # entry on the first bar, exit after the last
    assert res.turnover == approx(2 / 4)
    f = flat(bars(r, 1), Costs())
    assert (f.total_return, f.sharpe, f.max_drawdown, f.fees_paid, f.exposure) == (0, 0, 0, 0, 0)
    assert math.isnan(f.hit_rate)


def test_choose_threshold_uses_validation_only():
    n = 40
    mag = np.linspace(0.01, 1.0, n)
    sign = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    size = 0.01 * (1 + 0.5 * np.sin(np.arange(n)))
    pred = sign * mag
    # validation: only the confident forecasts are right; test: only the timid ones are
    val = bars(sign * size * np.where(mag > 0.5, 1, -1), 0)
    test = bars(sign * size * np.where(mag > 0.5, -1, 2), 0)
    zero = Costs(0, 0)
    th = choose_threshold(pred, val, zero)
    assert th == np.quantile(mag, 0.5)
    th_test = choose_threshold(pred, test, zero)  # what peeking at test would have picked
    assert th_test != th

    def sharpe(frame, t):
        return backtest(frame.assign(position=positions_from_predictions(pred, t)), costs=zero).sharpe

    assert sharpe(test, th_test) > sharpe(test, th)
    assert sharpe(val, th) > sharpe(val, th_test)


def test_information_coefficient_and_report():
    x = np.linspace(-2, 2, 50)
    ic = information_coefficient(x, np.exp(3 * x))  # monotone but far from linear
    assert ic["ic_rank"] == pytest.approx(1.0)
    assert ic["ic_pearson"] < 0.99
    assert math.isnan(information_coefficient(x, np.ones(50))["ic_pearson"])
    assert math.isnan(information_coefficient([1.0, 2.0], [1.0, 2.0])["ic_rank"])
    rep = numeric_report(np.r_[x, np.nan], np.r_[x, 1.0], labels=np.array([0, 1, 2, -1]),
                         label_pred=np.array([0, 1, 1, 0]), train_labels=np.array([1, 1, 0]))
    assert rep["n"] == 50 and rep["rmse"] == 0 and rep["directional_accuracy"] == 1
    assert rep["ic_pearson"] == pytest.approx(1.0)
    assert rep["label_accuracy"] == pytest.approx(2 / 3) and rep["majority_accuracy"] == pytest.approx(1 / 3)
    assert all(isinstance(v, float) for v in rep.values())


def market(hours=30):
    rng = np.random.default_rng(1)
    parts = []
    for sym in ("BTC-USD", "ETH-USD"):
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, hours)))
        parts.append(pd.DataFrame({"symbol": sym, "ts": [T0 + h * H for h in range(hours)], "close": close}))
    df = pd.concat(parts, ignore_index=True)
    df["target_return_1h"] = np.log(df.groupby("symbol")["close"].shift(-1) / df["close"])
    return df.sample(frac=1, random_state=0)  # the guard sorts by (symbol, ts) itself


def test_leakage_guard_passes_an_honest_predictor():
    def honest(f):
        mean = f.groupby("symbol")["close"].transform(lambda s: s.rolling(3, min_periods=1).mean())
        return (f["close"] / mean - 1).to_numpy()

    out = leakage_guard(honest, market())
    assert out == {"passed": True, "checked": 20, "mismatches": [], "mismatch_count": 0}


def test_leakage_guard_catches_a_peek_at_the_future():
    def peeker(f):
        return np.log(f.groupby("symbol")["close"].shift(-1) / f["close"]).to_numpy()

    out = leakage_guard(peeker, market())
    assert out["passed"] is False and out["checked"] == 20
    assert 0 < len(out["mismatches"]) <= 5 and out["mismatch_count"] >= len(out["mismatches"])
    m = out["mismatches"][0]
    assert set(m) == {"symbol", "ts", "full", "cut"} and math.isnan(m["cut"]) and not math.isnan(m["full"])


def test_leakage_guard_hides_target_columns():
    out = leakage_guard(lambda f: f["target_return_1h"].to_numpy(), market())
    assert out["passed"] is False and out["checked"] == 0
    assert out["error"].startswith("KeyError")
