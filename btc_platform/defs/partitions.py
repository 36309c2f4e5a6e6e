"""Partitions shared across areas: UTC days, and UTC days x Coinbase product."""

from __future__ import annotations

import warnings
from datetime import date, datetime, timedelta, timezone

import dagster as dg

from btc_platform.vendors.coinbase import PRODUCT_START_DATES
from btc_platform.vendors.errors import MalformedPayloadError

# Beta features relied on deliberately (range backfills): their notices would repeat at every
# definitions load, in every run and every test.
for _feature in ("backfill_policy",):
    warnings.filterwarnings("ignore", message=f".*{_feature}.*", category=dg.BetaWarning)

HISTORY_START = min(PRODUCT_START_DATES.values())

daily = dg.DailyPartitionsDefinition(start_date=HISTORY_START.isoformat(), timezone="UTC")

daily_by_symbol = dg.MultiPartitionsDefinition(
    {"date": daily, "symbol": dg.StaticPartitionsDefinition(list(PRODUCT_START_DATES))}
)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def shift_key(key: str, days: int) -> str:
    """The partition key `days` days from `key` (same product for day x product keys)."""
    day, _, symbol = key.partition("|")
    moved = (date.fromisoformat(day) + timedelta(days=days)).isoformat()
    return f"{moved}|{symbol}" if symbol else moved


def multi_key(day: date, symbol: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"date": day.isoformat(), "symbol": symbol})


def range_tags(first: date, last: date, symbol: str | None = None) -> dict[str, str]:
    """Run tags that make one run cover days first..last (of one product, for day x product assets),
    as a backfill chunk does."""
    start, end = (first.isoformat(), last.isoformat()) if symbol is None else \
        (str(multi_key(first, symbol)), str(multi_key(last, symbol)))
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


# Backfills run in chunks of a year per product (Dagster groups a multi-partition range by product),
# not one run per day: the whole history since 2018-11 is ~24 runs, each ~3 minutes at Coinbase's
# 10 requests/s. A chunk, not the whole history, is what a failure makes you re-run (idempotently).
BACKFILL_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=366)


def last_closed_day(now: datetime | None = None) -> date:
    """The latest UTC day that has ended. A later day's data is not final, or does not exist yet."""
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc).date() - timedelta(days=1)


def refuse_open_days(days: list[date], what: str, now: datetime | None = None) -> None:
    """Fail naming the first of `days` after the last closed UTC day (and how many more there are)."""
    last = last_closed_day(now)
    late = sorted(d for d in days if d > last)
    if late:
        more = f" (and {len(late) - 1} later days)" if len(late) > 1 else ""
        raise ValueError(f"{what} {late[0]}{more} is after the last closed UTC day {last}: "
                         "a day can be built only once it has ended")


def partitions_in_run(context: dg.AssetExecutionContext) -> list[tuple[str, date, str | None]]:
    """(key, day, symbol) of every partition the run targets, oldest first; symbol is None for
    assets partitioned by day only. A run that targets a day not yet closed fails before any work
    (range tags can name days the partitions definition does not have yet)."""
    rows = []
    for key in map(str, context.partition_keys):
        if "|" in key:
            parsed = daily_by_symbol.get_partition_key_from_str(key).keys_by_dimension
            rows.append((key, date.fromisoformat(parsed["date"]), parsed["symbol"]))
        else:
            rows.append((key, date.fromisoformat(key), None))
    try:
        refuse_open_days([day for _, day, _ in rows], f"{context.op_def.name}: partition day")
    except ValueError as error:
        raise dg.Failure(str(error)) from None
    return sorted(rows, key=lambda r: (r[2] or "", r[1]))


def run_window(context: dg.AssetExecutionContext) -> tuple[datetime, datetime]:
    """[start of the first day, end of the last day) of the run's partitions: one vendor request
    sequence covers a whole backfill chunk, then the rows are split into daily partitions."""
    days = [day for _, day, _ in partitions_in_run(context)]
    return day_bounds(min(days))[0], day_bounds(max(days))[1]


def build_each_partition(context: dg.AssetExecutionContext, build) -> dg.MaterializeResult:
    """Run `build(key, day, symbol) -> metadata` for each partition of the run, in day order.

    Each partition is written whole by `build`. A partition refused for its own data (`dg.Failure`:
    a check or a missing input; a malformed vendor payload) does not stop the others: the run builds
    the rest, then fails naming the refused ones. Anything else (credentials, rate limits, an outage,
    a bug) would fail every later day too, so it stops the run at once. Either way the partitions
    already built are recorded as materialized first, so a backfill chunk loses nothing good.

    In a run of several partitions each one's materialization carries its own metadata (row count,
    path, preview); the run's totals are only beside them, under names of their own.
    """
    built: dict[str, dict] = {}
    refused: list[tuple[str, Exception]] = []
    targets = partitions_in_run(context)

    def record_built() -> None:
        # A failing step has no output: its built partitions are recorded as events of their own.
        if len(targets) > 1:
            for done, metadata in built.items():
                context.log_event(dg.AssetMaterialization(context.asset_key, partition=done, metadata=metadata))

    for key, day, symbol in targets:
        try:
            built[key] = build(key, day, symbol)
        except (dg.Failure, MalformedPayloadError) as error:
            refused.append((key, error))
        except Exception:
            record_built()
            raise
    if refused:
        record_built()
        if len(refused) == 1:
            raise refused[0][1]
        listed = "; ".join(f"{getattr(e, 'description', None) or e}" for _, e in refused[:5])
        raise dg.Failure(f"{len(refused)} of {len(targets)} partitions refused (the others were built): {listed}"
                         + (" ..." if len(refused) > 5 else ""),
                         metadata={"refused_partitions": dg.MetadataValue.json([k for k, _ in refused])})
    if len(targets) == 1:
        return dg.MaterializeResult(metadata=built[targets[0][0]])
    # Dagster writes one materialization per partition of the range: the partition's own metadata
    # goes on its own, the output's metadata on all of them.
    for key, metadata in built.items():
        context.add_asset_metadata(metadata, partition_key=key)
    return dg.MaterializeResult(metadata={
        "run_partitions": len(built),
        "run_rows_total": sum(m.get("dagster/row_count", 0) for m in built.values()),
    })
