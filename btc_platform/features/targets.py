"""Forward targets (log and percent returns, target price, buy/sell/hold label), looked up by
timestamp so a missing bar never shifts a target. Targets are outputs only: never features."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

DEFAULT_HORIZONS = {"1h": 1, "24h": 24}


def compute_forward_returns(
    bars: pd.DataFrame, horizons: dict[str, int], bar: pd.Timedelta
) -> pd.DataFrame:
    """`target_return_{h}` = log(close at ts + n*bar / close at ts): from the decision at bar t's
    close to bar t+n's close. NaN where that bar is absent (or its close is NaN).

    Filled bars (is_filled) carry the last traded price, so they count as present.
    The newest rows need later bars: pass them in, then keep only the rows you want.
    """
    if bars["symbol"].nunique(dropna=True) > 1:
        raise ValueError("compute_forward_returns expects one symbol")
    if bars["ts"].duplicated().any():
        raise ValueError("bars has duplicate ts; targets would be ambiguous")
    bar = pd.Timedelta(bar)
    ts = pd.DatetimeIndex(bars["ts"])
    close = pd.Series(bars["close"].to_numpy(dtype="float64"), index=ts)

    out = bars[["ts", "symbol"]].reset_index(drop=True)
    out["close"] = close.to_numpy()
    for name, n in horizons.items():
        future = close.reindex(ts + n * bar).to_numpy()
        out[f"target_return_{name}"] = np.log(future / close.to_numpy())
    return out


# ------------------------------------------------------------------------------------------------
# Full targets: returns over several horizons, the 90-day target price, and a 3-class label.

DEFAULT_TARGET_HORIZONS: dict[str, pd.Timedelta] = {
    name: pd.Timedelta(name) for name in ("1h", "1d", "3d", "5d", "90d")
}
ENTRIES = ("close_t", "close_t+1")
LABELS = ("sell", "hold", "buy")
# A simple return within this of +-label_threshold counts as reaching it (so 100 -> 102 is "buy"
# although 102/100 - 1 is 0.020000000000000018 in floating point and 98/100 - 1 is -0.0200..18).
LABEL_TOLERANCE = 1e-12


def _horizons(horizons, bar: pd.Timedelta | None = None) -> dict[str, pd.Timedelta]:
    """{name: Timedelta} from a mapping (values Timedelta or str) or an iterable of names ("3d")."""
    if isinstance(horizons, Mapping):
        out = {str(k): pd.Timedelta(v) for k, v in horizons.items()}
    else:
        out = {str(k): pd.Timedelta(k) for k in horizons}
    if not out:
        raise ValueError("no horizons given")
    for name, h in out.items():
        if h <= pd.Timedelta(0):
            raise ValueError(f"horizon {name} must be positive, got {h}")
        if bar is not None and h % bar != pd.Timedelta(0):
            raise ValueError(f"horizon {name} ({h}) is not a whole number of bars of {bar}")
    return out


def _entry_offset(entry: str, bar: pd.Timedelta) -> pd.Timedelta:
    if entry not in ENTRIES:
        raise ValueError(f"entry must be one of {ENTRIES}, got {entry!r}")
    return bar if entry == "close_t+1" else pd.Timedelta(0)


def compute_targets(
    bars: pd.DataFrame,
    *,
    bar: pd.Timedelta,
    horizons: Mapping[str, pd.Timedelta] | Iterable[str] | None = None,
    entry: str = "close_t",
    label_threshold: float = 0.02,
    label_horizon: str | None = "1d",
    price_horizons: Iterable[str] = ("90d",),
    range_horizons: Iterable[str] = (),
    use_filled_bars: bool = False,
) -> pd.DataFrame:
    """Forward targets of every bar, looked up by exact timestamp (never by row position).

    Timing. The decision is taken at the close of bar t (open time `ts`, close `ts + bar`).
    - `entry="close_t"`: the position is entered at bar t's close; the entry price is bar t's
      close and the exit price for horizon h is the close of the bar opening at `ts + h`
      (so the return spans exactly h, from time `ts + bar` to `ts + bar + h`).
    - `entry="close_t+1"`: entered one bar later (execution delay): entry price is the close of the
      bar opening at `ts + bar`, exit the close of the bar opening at `ts + bar + h` (still a span
      of exactly h, shifted by one bar).
    A target is NaN when its entry or exit bar is absent from `bars` (or its close is NaN): a missing
    future bar never lets another row stand in. With `use_filled_bars=False` (default) a bar with
    `is_filled` (no trades: an outage, or an empty interval) also counts as absent, since its
    "close" is a stale carried price nobody could trade at; pass True to treat filled bars as
    ordinary prices (the convention of `compute_forward_returns`).

    Columns, in input row order: `ts`, `symbol` (if present), `close`, `target_entry_price`, then for
    each horizon h `target_return_{h}` = log(exit / entry) and `target_return_pct_{h}` =
    (exit / entry - 1) * 100 (= (e^r - 1) * 100), `target_price_{h}` (the exit close) for each h in
    `price_horizons` that is among the horizons, and `target_label_{label_horizon}` in
    {"sell", "hold", "buy"} (None where that return is NaN). Labels, on the simple return
    r = exit / entry - 1 of `label_horizon`, both boundaries inclusive:
        buy  if r >= +label_threshold,  sell if r <= -label_threshold,  hold otherwise
    (r within LABEL_TOLERANCE of a boundary counts as on it, absorbing float rounding).
    Every output column but ts/symbol/close is a target: never use `target_*` as a feature.

    `horizons` default: DEFAULT_TARGET_HORIZONS (1h, 1d, 3d, 5d, 90d) limited to whole multiples of
    `bar` (daily bars get 1d..90d). Given explicitly, each must be a whole number of bars.
    `bars` may hold several symbols (targets never cross symbols); (symbol, ts) must be unique.
    The newest rows need later bars: pass bars up to `lookahead(...)` beyond, then keep your rows.
    """
    bar = pd.Timedelta(bar)
    if bar <= pd.Timedelta(0):
        raise ValueError(f"bar must be positive, got {bar}")
    if horizons is None:
        hz = {k: h for k, h in DEFAULT_TARGET_HORIZONS.items() if h % bar == pd.Timedelta(0)}
    else:
        hz = _horizons(horizons, bar)
    offset = _entry_offset(entry, bar)
    if label_horizon is not None and label_horizon not in hz:
        raise ValueError(f"label_horizon {label_horizon!r} is not among the horizons {list(hz)}")
    if not label_threshold > 0:
        raise ValueError(f"label_threshold must be positive, got {label_threshold}")

    has_symbol = "symbol" in bars.columns
    keys = ["symbol", "ts"] if has_symbol else ["ts"]
    if bars.duplicated(keys).any():
        raise ValueError(f"bars has duplicate {'/'.join(keys)}; targets would be ambiguous")
    ts = pd.DatetimeIndex(bars["ts"])
    if ts.tz is None:
        raise ValueError("bars.ts must be timezone-aware (UTC)")

    close = bars["close"].to_numpy(dtype="float64")
    price = close.copy()
    if not use_filled_bars and "is_filled" in bars.columns:
        price[bars["is_filled"].eq(True).to_numpy()] = np.nan
    sym = bars["symbol"].to_numpy() if has_symbol else None

    def index(at: pd.DatetimeIndex) -> pd.Index:
        return pd.MultiIndex.from_arrays([sym, at]) if has_symbol else at

    by_key = pd.Series(price, index=index(ts))

    def price_at(delta: pd.Timedelta) -> np.ndarray:
        if delta == pd.Timedelta(0):
            return price
        return by_key.reindex(index(ts + delta)).to_numpy()

    out = bars[["ts", "symbol"] if has_symbol else ["ts"]].reset_index(drop=True).copy()
    out["close"] = close
    entry_price = price_at(offset)
    out["target_entry_price"] = entry_price
    simple: dict[str, np.ndarray] = {}
    exits: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for name, h in hz.items():
            exits[name] = exit_price = price_at(offset + h)
            ratio = exit_price / entry_price
            simple[name] = ratio - 1.0
            out[f"target_return_{name}"] = np.log(ratio)
            out[f"target_return_pct_{name}"] = simple[name] * 100.0
    for name in price_horizons:
        if name in hz:
            out[f"target_price_{name}"] = exits[name]
    for name in range_horizons:
        high, low = _forward_range(bars, price, offset, _horizons([name], bar)[name], bar, has_symbol)
        out[f"target_high_{name}"], out[f"target_low_{name}"] = high, low
    if label_horizon is not None:
        out[f"target_label_{label_horizon}"] = label_returns(simple[label_horizon], label_threshold)
    return out


def _forward_range(bars: pd.DataFrame, price: np.ndarray, offset: pd.Timedelta, horizon: pd.Timedelta,
                   bar: pd.Timedelta, has_symbol: bool) -> tuple[np.ndarray, np.ndarray]:
    """Max high and min low over the bars opening at ts+offset+bar .. ts+offset+horizon, per row."""
    n = int(horizon // bar)
    lead = int(offset // bar) + 1  # the first bar after entry
    absent = np.isnan(price)  # filled (no-trade) or missing bars: no range known
    frame = pd.DataFrame({
        "symbol": bars["symbol"].to_numpy() if has_symbol else "",
        "ts": pd.DatetimeIndex(bars["ts"]),
        "high": np.where(absent, np.nan, bars["high"].to_numpy(dtype="float64")),
        "low": np.where(absent, np.nan, bars["low"].to_numpy(dtype="float64")),
    })
    high, low = np.full(len(frame), np.nan), np.full(len(frame), np.nan)
    for _, rows in frame.groupby("symbol", sort=False):
        grid = pd.date_range(rows["ts"].min(), rows["ts"].max(), freq=bar)
        series = rows.set_index("ts")[["high", "low"]].reindex(grid)
        # A trailing window of n on the reversed series is the forward window [t, t+n-1]; shift by lead.
        ahead = series[::-1].rolling(n, min_periods=n)
        fwd_high = ahead["high"].max()[::-1].shift(-lead)
        fwd_low = ahead["low"].min()[::-1].shift(-lead)
        high[rows.index] = fwd_high.reindex(rows["ts"]).to_numpy()
        low[rows.index] = fwd_low.reindex(rows["ts"]).to_numpy()
    return high, low


def label_returns(simple_return, threshold: float = 0.02) -> np.ndarray:
    """"sell"/"hold"/"buy" for simple returns (fractions), boundaries inclusive; None for NaN."""
    r = np.asarray(simple_return, dtype="float64")
    labels = np.full(r.shape, "hold", dtype=object)
    labels[r >= threshold - LABEL_TOLERANCE] = "buy"
    labels[r <= -threshold + LABEL_TOLERANCE] = "sell"
    labels[np.isnan(r)] = None
    return labels


def lookahead(
    horizons: Mapping[str, pd.Timedelta] | Iterable[str],
    bar: pd.Timedelta,
    *,
    entry: str = "close_t",
) -> pd.Timedelta:
    """How far beyond a bar its targets reach: the longest horizon, plus one bar for "close_t+1".

    The targets of the bar opening at t read the close of the bar opening at t + lookahead, so they
    are known once that bar has closed, at (t + bar) + lookahead: `lookahead` after the decision.
    E.g. the 90d target of the daily bar of day D reads the daily bar of day D+90.
    """
    bar = pd.Timedelta(bar)
    return max(_horizons(horizons, bar).values()) + _entry_offset(entry, bar)


def lookahead_partitions(
    horizons: Mapping[str, pd.Timedelta] | Iterable[str],
    bar: pd.Timedelta,
    *,
    entry: str = "close_t",
    partition: pd.Timedelta | str = "1D",
) -> int:
    """How many partitions after partition D must exist before D's targets are all computable.

    The last bar of D opens at D + partition - bar and reads the bar opening `lookahead` later.
    1h bars with a 1d horizon: 1 (day D+1); with entry "close_t+1": 2; 1d bars with 90d: 90.
    Bars must tile the partitions (the partition a whole number of bars).
    """
    bar, partition = pd.Timedelta(bar), pd.Timedelta(partition)
    if partition % bar != pd.Timedelta(0):
        raise ValueError(f"partition {partition} is not a whole number of bars of {bar}")
    return int((partition - bar + lookahead(horizons, bar, entry=entry)) // partition)


@dataclass(frozen=True)
class TargetCompleteness:
    """Which rows of a `compute_targets` frame have every target of the horizons asked about."""

    rows: pd.Series  # bool per row, aligned with the targets frame's index
    columns: tuple[str, ...]  # the target columns checked
    missing: dict[str, int]  # NaN count per checked column

    @property
    def n_rows(self) -> int:
        return len(self.rows)

    @property
    def n_complete(self) -> int:
        return int(self.rows.sum())

    @property
    def all_complete(self) -> bool:
        return bool(self.rows.all())

    def __bool__(self) -> bool:
        return self.all_complete


def targets_complete(
    targets: pd.DataFrame,
    horizons: Mapping[str, pd.Timedelta] | Iterable[str] | None = None,
) -> TargetCompleteness:
    """Rows whose `target_return_{h}`, `target_return_pct_{h}` and, where present,
    `target_price_{h}` / `target_label_{h}` are all set for every horizon h (default: every
    `target_return_*` horizon in the frame). `bool(report)` is True when every row is complete.
    """
    if horizons is None:
        names = [c[len("target_return_"):] for c in targets.columns
                 if c.startswith("target_return_") and not c.startswith("target_return_pct_")]
    else:
        names = list(_horizons(horizons))
    cols: list[str] = []
    for name in names:
        required = [f"target_return_{name}", f"target_return_pct_{name}"]
        absent = [c for c in required if c not in targets.columns]
        if absent:
            raise ValueError(f"targets lack {absent}")
        optional = (f"target_price_{name}", f"target_label_{name}")
        cols += required + [c for c in optional if c in targets.columns]
    present = targets[cols].notna()
    return TargetCompleteness(
        rows=present.all(axis=1),
        columns=tuple(cols),
        missing={c: int(n) for c, n in (~present).sum().items()},
    )
