{{ config(**incremental_by_day()) }}
-- Model-ready daily rows, one per (symbol, day): the day's bar and its technical features, with the
-- context and the targets of the day's last hourly bar, which closes at the same moment (midnight UTC
-- after the day), so every value is known at the daily decision and every target starts from it.
with features as (
    select * from {{ ref('stg_technical_features_1d') }}
    where {{ partition_window() }}
),

targets_90d as (
{{ targets_90d() }}
)

select
    {{ training_columns('day', with_multi_timeframe=false) }}
from features as f
inner join {{ ref('stg_candles_1d') }} as c on c.symbol = f.symbol and c.ts = f.ts
inner join {{ ref('stg_forward_targets_1h') }} as t
    on t.symbol = f.symbol and t.ts = {{ dbt.dateadd('hour', 23, 'f.ts') }}
left join {{ ref('stg_context_features_1h') }} as x
    on x.symbol = f.symbol and x.ts = {{ dbt.dateadd('hour', 23, 'f.ts') }}
left join targets_90d as l
    on l.symbol = f.symbol and l.ts = {{ dbt.dateadd('hour', 23, 'f.ts') }}
where t.target_return_1h is not null
    and t.target_return_24h is not null
