"""Data-quality summaries, blocking rules and the coverage chart (no Dagster here)."""

from btc_platform.monitoring.coverage_chart import coverage_matrix, write_coverage_png, write_coverage_svg
from btc_platform.monitoring.quality import (
    BLOCKING_RULES,
    LiquidityProfile,
    blocking_failures,
    classify_gaps,
    combine_profiles,
    liquidity_profile,
    ohlc_violations,
    outliers,
    source_shares,
    summarize_candles,
    summarize_series,
    warnings,
)

__all__ = [
    "BLOCKING_RULES", "LiquidityProfile", "blocking_failures", "classify_gaps", "combine_profiles",
    "coverage_matrix", "liquidity_profile", "ohlc_violations", "outliers", "source_shares",
    "summarize_candles", "summarize_series", "warnings", "write_coverage_png", "write_coverage_svg",
]
