-- One row per (symbol, ts): if a bar was ever loaded under two partitions, the latest partition wins.
select
    ts,
    symbol,
    close,
    target_return_1h,
    target_return_24h,
    partition_date
from {{ source('processed', 'forward_targets_1h') }}
where true  -- BigQuery accepts QUALIFY only next to WHERE, GROUP BY or HAVING
qualify row_number() over (partition by symbol, ts order by partition_date desc) = 1
