"""Declarative automation shared by the processed, warehouse and dataset areas.

Dagster's `eager()` looks at the newest day partition only. Targets of day D land days later (D+5 for
the short horizons, D+90 for the 90-day one), so these conditions look back far enough to fill them in.
"""

from datetime import timedelta

import dagster as dg

SHORT_LOOKBACK_DAYS = 7  # the 5-day targets, one bar of entry delay, and a day of slack
LONG_LOOKBACK_DAYS = 92  # the 90-day targets


def eager_over_days(days: int) -> dg.AutomationCondition:
    """`eager()` over the last `days` day partitions instead of the newest one only."""
    return dg.AutomationCondition.eager().replace(
        dg.AutomationCondition.in_latest_time_window(),
        dg.AutomationCondition.in_latest_time_window(timedelta(days=days)),
    )


def eager_ignoring_missing(days: int, optional: dg.AssetSelection) -> dg.AutomationCondition:
    """Eager over `days`, but not held back by missing partitions of `optional` upstreams (e.g. 90-day
    targets, absent for the newest 90 days): those join later, as an update."""
    return eager_over_days(days).replace(
        dg.AutomationCondition.any_deps_missing(),
        dg.AutomationCondition.any_deps_missing().ignore(optional),
    )


def eager_once_future_exists(waiting_days: int, lookback_days: int) -> dg.AutomationCondition:
    """For targets: day D is eligible only once D+`waiting_days` is a day that exists (it has ended),
    then eager within `lookback_days`; until then its future candles cannot have landed."""
    return eager_over_days(lookback_days) & ~dg.AutomationCondition.in_latest_time_window(
        timedelta(days=waiting_days))


# Processed and warehouse assets: eager, never past a failed blocking check upstream.
AUTOMATION = eager_over_days(SHORT_LOOKBACK_DAYS) & dg.AutomationCondition.all_deps_blocking_checks_passed()
LONG_AUTOMATION = eager_over_days(LONG_LOOKBACK_DAYS) & dg.AutomationCondition.all_deps_blocking_checks_passed()

# Datasets read a whole day-partitioned mart: a new version whenever any day of it is rebuilt. Days of
# history that were never built are normal (the mart starts where data starts), so they never block.
DATASET_AUTOMATION = dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())
