{{ config(materialized='view') }}
-- Coverage of the Coinbase 1-minute candles per symbol and day, from the quality summaries: present,
-- missing and no-trade minutes, gaps, and the blocking failures that kept a day out of the datasets.
select
    partition_date as day,
    symbol,
    dataset,
    listed,
    expected_bars,
    present_bars,
    missing_bars,
    no_trade_bars,
    coverage,
    coverage_adjusted,
    gap_count,
    largest_gap_bars,
    duplicates,
    ohlc_violations,
    outliers,
    blocking_failures,
    blocking_failures = '' as passed
from ({{ latest_rows('raw', 'candle_quality', columns={
    'dataset': 'string', 'listed': 'bool', 'expected_bars': 'int', 'present_bars': 'int',
    'missing_bars': 'int', 'no_trade_bars': 'int', 'coverage': 'float', 'coverage_adjusted': 'float',
    'gap_count': 'int', 'largest_gap_bars': 'int', 'duplicates': 'int', 'ohlc_violations': 'int',
    'outliers': 'int', 'blocking_failures': 'string'}) }}) as quality
