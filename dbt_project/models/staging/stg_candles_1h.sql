-- candles_1h, one row per (symbol, ts).
{{ latest_rows('processed', 'candles_1h', columns=candle_columns()) }}
