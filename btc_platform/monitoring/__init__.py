"""Data-quality summaries and blocking rules (no Dagster here)."""

from btc_platform.monitoring.quality import (
    BLOCKING_RULES,
    blocking_failures,
    summarize_candles,
    warnings,
)

__all__ = ["BLOCKING_RULES", "blocking_failures", "summarize_candles", "warnings"]
