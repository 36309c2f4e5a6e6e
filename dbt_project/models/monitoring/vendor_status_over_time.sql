{{ config(materialized='view') }}
-- Each vendor endpoint's status per day (the last snapshot taken that day), and whether it changed
-- since the previous snapshot: when access was lost and when it came back.
with snapshots as (
    select *
    from ({{ latest_rows('raw', 'vendor_status_daily', keys=['vendor', 'endpoint', 'partition_date'], columns={
        'vendor': 'string', 'endpoint': 'string', 'status': 'string', 'last_success': 'string',
        'last_failure': 'string', 'last_failure_status': 'string', 'last_failure_message': 'string',
        'checked_at': 'timestamp'}) }}) as latest
)

select
    partition_date as day,
    vendor,
    endpoint,
    status,
    lag(status) over (partition by vendor, endpoint order by partition_date) as previous_status,
    coalesce(status != lag(status) over (partition by vendor, endpoint order by partition_date), false)
        as status_changed,
    last_success,
    last_failure,
    last_failure_status,
    last_failure_message,
    checked_at
from snapshots
