-- candles_1d, one row per (symbol, ts).
{{ latest_rows('processed', 'candles_1d', columns=candle_columns()) }}
