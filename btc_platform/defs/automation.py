"""Declarative automation shared by the processed, warehouse and dataset areas, and the sensors that
evaluate it (running out of the box).

Dagster's `eager()` looks at the newest day partition only. Here an update of any day, however old
(a backfill of history), carries through to the same day downstream; a partition that is merely
missing is filled in only within the latest days, so a fresh instance does not backfill history by
itself. Targets of day D need later days (D+5, D+91): they wait until those days' candles exist, and
follow them when they land or change (`LookAhead`).
"""

import warnings
from datetime import timedelta

import dagster as dg
from dagster._core.definitions.declarative_automation.automation_condition import AutomationResult

from btc_platform.defs.partitions import shift_key

AC = dg.AutomationCondition
# Beta, relied on deliberately (LOOKAHEAD_SENSOR); the notice would repeat at every definitions load.
warnings.filterwarnings("ignore", message=".*use_user_code_server.*", category=dg.BetaWarning)
SHORT_LOOKBACK_DAYS = 7  # missing days filled in by themselves: the 5-day targets, entry delay, slack
LONG_LOOKBACK_DAYS = 92  # the 90-day targets


def eager_over_history(missing_days: int, optional: dg.AssetSelection | None = None) -> dg.AutomationCondition:
    """`eager()` where an upstream update on any day triggers that day, and a missing day is filled in
    only within the last `missing_days`. Missing partitions of `optional` upstreams (e.g. 90-day
    targets, absent for the newest 90 days) do not hold a day back: they join later, as an update."""
    deps_missing = AC.any_deps_missing() if optional is None else AC.any_deps_missing().ignore(optional)
    recently_missing = AC.in_latest_time_window(timedelta(days=missing_days)) & AC.newly_missing()
    return (
        (recently_missing | AC.any_deps_updated()).since_last_handled()
        & ~deps_missing & ~AC.any_deps_in_progress() & ~AC.in_progress()
    ).with_label(f"eager over history (missing: last {missing_days} days)")


class LookAhead(dg.AutomationCondition):
    """For day D (x product): `upstream` of day D+`days` exists (`updated=False`), or some day of
    D+1..D+`days` of `upstream` was updated since the previous evaluation (`updated=True`).

    The look-ahead is not a partition mapping, so a backfill of N days plans N days of targets; this
    condition is where the dependency on later days lives. Not serializable: its sensor evaluates in
    the code location (`LOOKAHEAD_SENSOR`)."""

    def __init__(self, upstream: str, days: int, updated: bool = False):
        self.upstream, self.days, self.updated = dg.AssetKey(upstream), days, updated

    @property
    def name(self) -> str:
        return f"{self.upstream.to_user_string()} {'updated within' if self.updated else 'exists at'} D+{self.days}"

    async def evaluate(self, context) -> AutomationResult:
        view, candidates = context.asset_graph_view, context.candidate_subset
        if candidates.is_empty:
            return AutomationResult(context, candidates)
        upstream_days = context.asset_graph.get(self.upstream).partitions_def
        if self.updated:
            if context.previous_temporal_context is None:
                return AutomationResult(context, context.get_empty_subset())
            landed = await view.compute_updated_since_temporal_context_subset(
                key=self.upstream, temporal_context=context.previous_temporal_context)
            keys = {shift_key(k, -n) for k in landed.expensively_compute_partition_keys()
                    for n in range(1, self.days + 1)}
            keys = {k for k in keys if candidates.partitions_def.has_partition_key(k)}
        else:
            # D+days may not have ended yet: such a day is not one the definition has.
            future = {shift_key(k, self.days): k for k in candidates.expensively_compute_partition_keys()}
            wanted = view.get_subset_from_partition_keys(self.upstream, upstream_days,
                                                         {k for k in future if upstream_days.has_partition_key(k)})
            absent = await view.compute_missing_subset(key=self.upstream, from_subset=wanted)
            keys = {future[k] for k in wanted.compute_difference(absent).expensively_compute_partition_keys()}
        return AutomationResult(context, candidates.compute_intersection_with_partition_keys(keys))


def eager_once_future_exists(upstream: str, waiting_days: int, missing_days: int) -> dg.AutomationCondition:
    """For targets: day D runs once `upstream` day D+`waiting_days` exists (its candles have landed),
    again whenever D or a day of its look-ahead is updated; missing days are filled only within the
    last `missing_days`."""
    recently_missing = AC.in_latest_time_window(timedelta(days=missing_days)) & AC.newly_missing()
    return (
        (recently_missing | AC.any_deps_updated() | LookAhead(upstream, waiting_days, updated=True))
        .since_last_handled()
        & LookAhead(upstream, waiting_days)
        & ~AC.any_deps_missing() & ~AC.any_deps_in_progress() & ~AC.in_progress()
    ).with_label(f"once D+{waiting_days} exists")


# Processed and warehouse assets: eager over history, never past a failed blocking check upstream.
AUTOMATION = eager_over_history(SHORT_LOOKBACK_DAYS) & AC.all_deps_blocking_checks_passed()
LONG_AUTOMATION = eager_over_history(LONG_LOOKBACK_DAYS) & AC.all_deps_blocking_checks_passed()

# Datasets read a whole day-partitioned mart: a new version whenever any day of it is rebuilt. Days of
# history that were never built are normal (the mart starts where data starts), so they never block.
DATASET_AUTOMATION = AC.eager().without(~AC.any_deps_missing())

# Assets whose condition holds a `LookAhead` (the forward targets): evaluated in the code location.
LOOKAHEAD_ASSETS = dg.AssetSelection.assets("forward_targets_1h", "forward_targets_90d_1h")

# On out of the box: `make ui` and a deployment evaluate automation without anyone switching it on.
AUTOMATION_SENSOR = dg.AutomationConditionSensorDefinition(
    "automation", target=dg.AssetSelection.all() - LOOKAHEAD_ASSETS,
    default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=30,
    description="Declarative automation of every asset but the forward targets (evaluated by the daemon).")
LOOKAHEAD_SENSOR = dg.AutomationConditionSensorDefinition(
    "automation_lookahead", target=LOOKAHEAD_ASSETS, use_user_code_server=True,
    default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=30,
    description="Declarative automation of the forward targets, whose look-ahead condition runs in the code location.")
