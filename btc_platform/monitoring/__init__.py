"""Data-quality summaries, blocking rules and the coverage chart (no Dagster here)."""

from btc_platform.monitoring.coverage_chart import coverage_matrix, write_coverage_png, write_coverage_svg
from btc_platform.monitoring.quality import (
    BLOCKING_RULES,
    blocking_failures,
    classify_gaps,
    outliers,
    source_shares,
    summarize_candles,
    summarize_series,
    warnings,
)

__all__ = [
    "BLOCKING_RULES", "blocking_failures", "classify_gaps", "coverage_matrix", "outliers", "source_shares",
    "summarize_candles", "summarize_series", "warnings", "write_coverage_png", "write_coverage_svg",
]
