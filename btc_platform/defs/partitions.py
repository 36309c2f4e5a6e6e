"""Partitions shared across areas: UTC days, and UTC days x Coinbase product."""

from __future__ import annotations

import warnings
from datetime import date, datetime, timedelta, timezone

import dagster as dg

from btc_platform.vendors.coinbase import PRODUCT_START_DATES

HISTORY_START = min(PRODUCT_START_DATES.values())

daily = dg.DailyPartitionsDefinition(start_date=HISTORY_START.isoformat(), timezone="UTC")

daily_by_symbol = dg.MultiPartitionsDefinition(
    {"date": daily, "symbol": dg.StaticPartitionsDefinition(list(PRODUCT_START_DATES))}
)


def date_symbol(context: dg.AssetExecutionContext) -> tuple[date, str]:
    """The (UTC day, symbol) of a daily x symbol partition."""
    keys = context.partition_key.keys_by_dimension
    return date.fromisoformat(keys["date"]), keys["symbol"]


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def date_window_mapping(start_offset: int, end_offset: int = 0) -> dg.MultiPartitionMapping:
    """Same symbol; days D+start_offset .. D+end_offset (lookback or look-ahead)."""
    warnings.filterwarnings("ignore", category=dg.BetaWarning, module=__name__)
    return dg.MultiPartitionMapping(
        {
            "date": dg.DimensionPartitionMapping(
                "date",
                dg.TimeWindowPartitionMapping(
                    start_offset=start_offset,
                    end_offset=end_offset,
                    allow_nonexistent_upstream_partitions=True,
                ),
            ),
            "symbol": dg.DimensionPartitionMapping("symbol", dg.IdentityPartitionMapping()),
        }
    )


def multi_key(day: date, symbol: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"date": day.isoformat(), "symbol": symbol})
