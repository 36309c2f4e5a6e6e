import dagster as dg

from btc_platform.defs.coinapi.assets import coinapi_funding_rates, coinapi_perp_ohlcv_1h, coinapi_spot_ohlcv_1h

defs = dg.Definitions(assets=[coinapi_spot_ohlcv_1h, coinapi_perp_ohlcv_1h, coinapi_funding_rates])
