"""A market state in plain language, for LLM prompts ("RSI 72, overbought; MACD above signal; ...").

Deterministic and decision-time only: it reads the row's features (never a target_* column) and
leaves out whatever is missing rather than inventing it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from btc_platform.vendors import feargreed


def _num(state: Mapping, key: str) -> float | None:
    value = state.get(key)
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) or math.isinf(value) else value


def _flag(state: Mapping, key: str) -> bool:
    """A true boolean flag (a null or NaN from the warehouse is not one)."""
    value = state.get(key)
    return isinstance(value, (bool, np.bool_)) and bool(value)


def _pct_vs(price: float, level: float | None, name: str) -> str | None:
    if level is None or level == 0:
        return None
    diff = (price / level - 1) * 100
    return f"price {abs(diff):.1f}% {'above' if diff >= 0 else 'below'} {name}"


def _momentum(s: Mapping) -> list[str]:
    out = []
    rsi = _num(s, "rsi_14")
    if rsi is not None:
        zone = "overbought" if rsi >= 70 else "oversold" if rsi <= 30 else "neutral"
        out.append(f"RSI {rsi:.0f}, {zone}")
    macd, signal = _num(s, "macd"), _num(s, "macd_signal")
    if macd is not None and signal is not None:
        out.append(f"MACD {'above' if macd >= signal else 'below'} signal")
    adx = _num(s, "adx_14")
    if adx is not None:
        strength = "strong trend" if adx >= 25 else "weak trend" if adx < 20 else "moderate trend"
        out.append(f"ADX {adx:.0f}, {strength}")
    return out


def _price(s: Mapping) -> list[str]:
    close = _num(s, "close")
    if close is None:
        return []
    out = [f"close {close:,.2f}"]
    for col, name in (("sma_50", "SMA 50"), ("sma_200", "SMA 200")):
        text = _pct_vs(close, _num(s, col), name)
        if text:
            out.append(text)
    pband = _num(s, "bb_pband")
    if pband is not None:
        where = "above the upper Bollinger band" if pband > 1 else "below the lower Bollinger band" if pband < 0 \
            else "in the upper half of the Bollinger bands" if pband >= 0.5 else "in the lower half of the Bollinger bands"
        out.append(where)
    return out


def _risk(s: Mapping) -> list[str]:
    out = []
    vol = _num(s, "volatility_30d")
    if vol is not None:
        out.append(f"30-day volatility {vol * 100:.0f}% annualized")
    ratio = _num(s, "volume_ratio_20")
    if ratio is not None:
        out.append(f"volume {ratio:.1f}x its 20-bar average")
    elif _flag(s, "partial_bar"):
        coverage = _num(s, "bar_coverage")
        share = "" if coverage is None else f", {coverage:.0%} of its minutes"
        out.append(f"volume unknown (partial bar{share})")
    return out


def _market_structure(s: Mapping) -> list[str]:
    out = []
    rate, mean = _num(s, "funding_rate"), _num(s, "funding_rate_mean_7d")
    if rate is not None:
        sign = "positive" if rate > 0 else "negative" if rate < 0 else "flat"
        trend = "" if mean is None else " and rising" if rate > mean else " and falling" if rate < mean else ""
        out.append(f"funding {sign}{trend} ({rate * 100:.4f}% per period)")
    basis = _num(s, "perp_spot_basis")
    if basis is not None:
        out.append(f"perp basis {basis * 1e4:+.1f} bps")
    return out


def _context(s: Mapping) -> list[str]:
    out = []
    fg = _num(s, "fear_greed_index")
    if fg is not None:
        out.append(f"Fear & Greed {fg:.0f}, {feargreed.classify(round(fg)).lower()}")
    vix = _num(s, "vix")
    if vix is not None:
        out.append(f"VIX {vix:.1f}" + (", stressed" if vix >= 25 else ", calm" if vix < 15 else ""))
    for col, name in (("dxy", "DXY"), ("us10y_yield", "US 10y yield")):
        value = _num(s, col)
        if value is not None:
            out.append(f"{name} {value:.2f}" + ("%" if "yield" in col else ""))
    return out


def describe_market_state(state: Mapping) -> str:
    """One line of '; '-separated facts about the state, in a fixed order."""
    parts = _price(state) + _momentum(state) + _risk(state) + _market_structure(state) + _context(state)
    return "; ".join(parts)
