"""Market context on the 1-hour grid: macro, on-chain, sentiment and market structure, each value
joined as of the moment it became known (btc_platform/features/alignment.py has the rules).

The vendor datasets are read from the lake as far as they exist: a vendor that was skipped or is
still catching up leaves its columns null, and market-structure columns say why.
"""

from datetime import timedelta

import dagster as dg
import pandas as pd

from btc_platform.defs.automation import AUTOMATION
from btc_platform.defs.features.assets import _on_day, _write, by_symbol, processed_ref
from btc_platform.defs.partitions import (
    BACKFILL_POLICY,
    HISTORY_START,
    build_each_partition,
    daily_by_symbol,
    partitions_in_run,
)
from btc_platform.defs.resources import LakeResource
from btc_platform.features.alignment import macro_features, onchain_features, sentiment_features
from btc_platform.features.market_structure import market_structure_features
from btc_platform.lake import PartitionRef

BAR = pd.Timedelta(hours=1)
# How far back each source is read: a year and a month of FRED vintages (CPI YoY compares with the
# value of 12 months earlier as then known), a few weeks of daily series (weekly oil releases, 7-day
# forward fill), a week of funding for its 7-day mean and z-score.
LOOKBACK = {"fred_vintages": 400, "alphavantage_daily": 21, "cryptoquant_onchain": 10, "fear_greed_index": 10,
            "coinapi_funding_rates": 8}


def _days(first, last):
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _read_daily(store, dataset: str, first, last) -> pd.DataFrame | None:
    start = max(first - timedelta(days=LOOKBACK[dataset]), HISTORY_START)
    refs = [PartitionRef("raw", dataset, d) for d in _days(start, last)]
    if dataset == "fred_vintages" and start > HISTORY_START:
        refs.insert(0, PartitionRef("raw", dataset, HISTORY_START))  # everything published before the history
    frame = store.read_many(refs)
    return frame if len(frame) else None


def _read_product(store, dataset: str, symbol: str, first, last, lookback_days: int = 0) -> pd.DataFrame | None:
    # CoinAPI's hourly datasets (raw zone, per product); see defs/coinapi/assets.py.
    days = _days(first - timedelta(days=lookback_days), last)
    frame = store.read_many([PartitionRef("raw", dataset, d, symbol=symbol, interval="1h") for d in days])
    return frame if len(frame) else None


def _missing_reason(status, endpoint: str) -> str | None:
    current = status.get("coinapi", endpoint)
    return None if current is None or current.status == "ok" else current.status


@dg.asset(
    group_name="processed",
    partitions_def=daily_by_symbol,
    backfill_policy=BACKFILL_POLICY,
    deps=["candles_1h"],
    kinds={"pandas", "parquet"},
    description="Macro (FRED by vintage, Alpha Vantage after the close), on-chain (CryptoQuant), sentiment "
    "(Fear & Greed) and market-structure (funding 7d mean/z-score, perp-spot basis, CoinAPI divergence) "
    "features per 1-hour bar, each joined as of when it became known, forward-filled a bounded time, "
    "with the age of each value. Reads fred_vintages, alphavantage_daily, cryptoquant_onchain_metrics, "
    "fear_greed_index and the CoinAPI datasets from the lake as far as they exist.",
    automation_condition=AUTOMATION,
)
def context_features_1h(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    store, status = lake.lake(), lake.vendor_status()
    # A run may hold several products' days: each product gets its own bars and CoinAPI data.
    computed = {symbol: _context_of(context, store, status, symbol, targets[0][1], targets[-1][1])
                for symbol, targets in by_symbol(partitions_in_run(context)).items()}

    def build(key, day, symbol):
        features, inputs = computed[symbol]
        meta = _write(context, store, "context_features", day, symbol, _on_day(features, day))
        return {**meta, "input_rows": dg.MetadataValue.json({k: 0 if v is None else len(v) for k, v in inputs.items()})}

    return build_each_partition(context, build)


def _context_of(context, store, status, symbol, first, last) -> tuple[pd.DataFrame, dict]:
    """The context features of one product's hourly bars over first..last, and the inputs read."""
    bars = store.read_many([processed_ref("candles", d, symbol) for d in _days(first, last)])
    if bars.empty:
        raise dg.Failure(f"{context.partition_key_range.start}: no candles_1h of {symbol} for {first}..{last}")
    bars = bars.sort_values("ts", ignore_index=True)[["ts", "symbol", "close"]]

    fred, av = _read_daily(store, "fred_vintages", first, last), _read_daily(store, "alphavantage_daily", first, last)
    onchain = _read_daily(store, "cryptoquant_onchain", first, last)
    fear_greed = _read_daily(store, "fear_greed_index", first, last)
    funding = _read_product(store, "coinapi_funding_rates", symbol, first, last, LOOKBACK["coinapi_funding_rates"])
    perp = _read_product(store, "coinapi_perp_ohlcv", symbol, first, last)
    spot = _read_product(store, "coinapi_spot_ohlcv", symbol, first, last)
    if spot is not None:
        spot = spot[spot["source"] == "coinapi"]  # a Coinbase fallback cannot diverge from Coinbase
    reasons = {"funding": _missing_reason(status, "funding_rate"), "perp": _missing_reason(status, "ohlcv_history"),
               "coinapi_spot": _missing_reason(status, "ohlcv_history")}

    parts = [
        macro_features(bars, fred, av, bar=BAR),
        onchain_features(bars, onchain, bar=BAR),
        sentiment_features(bars, fear_greed, bar=BAR),
        market_structure_features(bars, funding=funding, perp=perp, coinapi_spot=spot, bar=BAR,
                                  missing_reasons={k: v for k, v in reasons.items() if v}),
    ]
    features = pd.concat([bars[["ts", "symbol"]], *(p.drop(columns=["ts", "symbol"], errors="ignore") for p in parts)],
                         axis=1)
    inputs = {"fred_vintages": fred, "alphavantage_daily": av, "cryptoquant_onchain": onchain,
              "fear_greed_index": fear_greed, "coinapi_funding_rates": funding, "coinapi_perp_ohlcv": perp,
              "coinapi_spot_ohlcv": spot}
    context.log.info(f"{symbol} inputs: " + ", ".join(f"{k}={0 if v is None else len(v)} rows" for k, v in inputs.items()))
    return features, inputs
