-- Model-ready rows: features at ts with the targets measured from ts. Rows still warming up (sma_200,
-- the slowest indicator, is null) or whose future is unknown (a target is null) are left out.
select
    f.ts,
    f.symbol,
    f.close,
    f.rsi_14,
    f.macd,
    f.macd_signal,
    f.macd_histogram,
    f.bb_upper,
    f.bb_middle,
    f.bb_lower,
    f.sma_20,
    f.sma_50,
    f.sma_200,
    f.ema_12,
    f.ema_26,
    f.atr_14,
    f.log_return_1,
    f.volatility_30,
    t.target_return_1h,
    t.target_return_24h
from {{ ref('stg_technical_features_1h') }} as f
inner join {{ ref('stg_forward_targets_1h') }} as t
    on f.symbol = t.symbol
    and f.ts = t.ts
where f.sma_200 is not null
    and t.target_return_1h is not null
    and t.target_return_24h is not null
order by f.symbol, f.ts
