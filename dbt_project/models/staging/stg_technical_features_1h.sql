-- One row per (symbol, ts): if a bar was ever loaded under two partitions, the latest partition wins.
select
    ts,
    symbol,
    close,
    rsi_14,
    macd,
    macd_signal,
    macd_histogram,
    bb_upper,
    bb_middle,
    bb_lower,
    sma_20,
    sma_50,
    sma_200,
    ema_12,
    ema_26,
    atr_14,
    log_return_1,
    volatility_30,
    partition_date
from {{ source('processed', 'technical_features_1h') }}
where true  -- BigQuery accepts QUALIFY only next to WHERE, GROUP BY or HAVING
qualify row_number() over (partition by symbol, ts order by partition_date desc) = 1
