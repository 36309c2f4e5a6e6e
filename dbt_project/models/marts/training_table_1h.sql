{{ config(**incremental_by_day()) }}
-- Model-ready hourly rows, one per (symbol, ts): the bar, its technical features, the last closed 4h and
-- 1d bars' features, macro / on-chain / sentiment / funding context as known at the bar's close, and
-- the targets measured from that close. Rows still warming up (sma_200 null) or whose short-horizon
-- future is unknown are left out; the 90-day targets stay null until day D+90 has landed.
with features as (
    select * from {{ ref('stg_technical_features_1h') }}
    where {{ partition_window() }}
),

targets_90d as (
{{ targets_90d() }}
)

select
    {{ training_columns('hour', with_multi_timeframe=true) }}
from features as f
inner join {{ ref('stg_candles_1h') }} as c on c.symbol = f.symbol and c.ts = f.ts
inner join {{ ref('stg_forward_targets_1h') }} as t on t.symbol = f.symbol and t.ts = f.ts
left join {{ ref('stg_multi_timeframe_features_1h') }} as m on m.symbol = f.symbol and m.ts = f.ts
left join {{ ref('stg_context_features_1h') }} as x on x.symbol = f.symbol and x.ts = f.ts
left join targets_90d as l on l.symbol = f.symbol and l.ts = f.ts
where f.sma_200 is not null
    and t.target_return_1h is not null
    and t.target_return_24h is not null
