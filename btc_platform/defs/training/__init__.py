import dagster as dg

from btc_platform.defs.training.assets import xgboost_baseline_1h
from btc_platform.defs.training.sensors import train_on_new_dataset

defs = dg.Definitions(assets=[xgboost_baseline_1h], sensors=[train_on_new_dataset])
